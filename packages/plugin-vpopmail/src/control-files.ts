import { mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { atomicWriteFile } from '@quail/core';

/** The meaningful lines of a qmail control file (blank lines and `#` comments skipped); [] when absent. */
export async function readControlLines(root: string, file: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(join(root, 'control', file), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

/** A `key:value` control file as qmail reads it: key lower-cased, the last line of a key wins. */
export async function readControlMap(root: string, file: string): Promise<Record<string, string>> {
  const map: Record<string, string> = {};
  for (const line of await readControlLines(root, file)) {
    const colon = line.indexOf(':');
    if (colon > 0) map[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return map;
}

/**
 * Rewrites a control file: lines for which `drop` is true go, `add` lines are
 * appended unless already present; other lines (comments too) stay as they were.
 * Atomic (temp file, fsync, rename); the file keeps its mode. Returns true when it changed.
 */
export async function editControlFile(
  root: string,
  file: string,
  change: { drop?: (line: string) => boolean; add?: string[] },
): Promise<boolean> {
  const path = join(root, 'control', file);
  let text = '';
  let mode = 0o644;
  try {
    text = await readFile(path, 'utf8');
    mode = (await stat(path)).mode & 0o777;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const kept = lines.filter((l) => !(change.drop && change.drop(l.trim())));
  const present = new Set(kept.map((l) => l.trim()));
  for (const line of change.add ?? []) if (!present.has(line)) kept.push(line), present.add(line);
  const next = kept.length === 0 ? '' : `${kept.join('\n')}\n`;
  if (next === text) return false;
  await mkdir(join(root, 'control'), { recursive: true });
  await atomicWriteFile(path, next, mode);
  return true;
}

/** The key of a `key:value` line, lower-cased; undefined for other lines. */
export function mapKey(line: string): string | undefined {
  const colon = line.indexOf(':');
  return colon > 0 && !line.startsWith('#') ? line.slice(0, colon).trim().toLowerCase() : undefined;
}
