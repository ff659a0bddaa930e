import { ControlDirectory, control, qmailFiles, type ControlEntry, type ControlSnapshot, type ControlSpecs, type Plugin } from '@quail/core';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { presetLoader, presetPlugins } from './preset.js';

/** The preset's own control files (read by the daemon and the command, not by a plugin). */
export const presetControl: ControlSpecs = {
  plugins: control.list({ description: 'plugins to load, in order (package name or path relative to the root)' }),
  user: control.string({ description: 'account the daemon runs as after binding its listeners' }),
};

/**
 * The control directory as the preset reads it: the preset plugins' declarations,
 * every qmail file (so that showctl lists the ones no plugin reads yet), and the preset's own.
 */
export function presetControlDirectory(root: string, plugins: Plugin[] = presetPlugins()): ControlDirectory {
  const dir = new ControlDirectory(root);
  const declared = new Set<string>(['me']);
  for (const p of plugins) {
    if (!p.control) continue;
    dir.declare(p.name, p.control);
    for (const f of Object.keys(p.control)) declared.add(f);
  }
  const rest = (specs: ControlSpecs) => Object.fromEntries(Object.entries(specs).filter(([f]) => !declared.has(f)));
  dir.declare('qmail', { ...rest(qmailFiles as ControlSpecs), ...rest(presetControl) });
  return dir;
}

/** The plugins `control/plugins` names (loaded as the daemon loads them), or the preset's when the file is absent. */
export async function configuredPlugins(root: string): Promise<Plugin[]> {
  let text: string;
  try {
    text = await readFile(join(root, 'control', 'plugins'), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return presetPlugins();
    throw err;
  }
  const load = presetLoader(root);
  const names = text.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  return Promise.all(names.map((n) => load(n)));
}

/** The control snapshot as the daemon would read it now. */
export async function loadSnapshot(root: string): Promise<ControlSnapshot> {
  return presetControlDirectory(root, await configuredPlugins(root)).load();
}

/** qmail-showctl's listing: one block per file, effective value, and whether it is the default. */
export function formatShowctl(snapshot: ControlSnapshot, root: string): string {
  const out: string[] = [`quail control directory: ${root}/control`, ''];
  for (const entry of snapshot.entries) out.push(formatEntry(entry));
  for (const file of snapshot.unknown) out.push(`${file}: I have no idea what this file does.`);
  return `${out.join('\n')}\n`;
}

function formatEntry(e: ControlEntry): string {
  const mark = e.isDefault ? '(Default.) ' : '';
  const who = `[${e.declaredBy.join(', ')}]`;
  const head = `${e.file}: ${mark}${e.description ?? ''} ${who}`.replace(/\s+$/, '');
  return `${head}\n${formatValue(e.file, e.value)}`;
}

function formatValue(file: string, value: unknown): string {
  if (value === undefined) return '  (none)';
  if (file === 'servercert.pem' || /BEGIN [A-Z ]*PRIVATE KEY/.test(typeof value === 'string' ? value : '')) return '  (certificate and key, not shown)';
  if (Array.isArray(value)) return value.length === 0 ? '  (empty)' : value.map((v) => `  ${show(v)}`).join('\n');
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>);
    if (entries.length === 0) return '  (empty)';
    if (entries.every(([, v]) => typeof v !== 'object' || v === null)) return entries.map(([k, v]) => `  ${k}:${show(v)}`).join('\n');
    return `  ${JSON.stringify(value)}`;
  }
  return `  ${show(value)}`;
}

function show(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}
