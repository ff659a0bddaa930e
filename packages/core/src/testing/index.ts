import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export { ManualClock } from '../clock.js';

/** A throw-away server root with a control/ directory holding the given files. */
export async function tempRoot(files: Record<string, string> = {}): Promise<{ root: string; cleanup: () => Promise<void> }> {
  const root = await mkdtemp(join(tmpdir(), 'quail-'));
  await mkdir(join(root, 'control'), { recursive: true });
  for (const [name, content] of Object.entries(files)) await writeFile(join(root, 'control', name), content);
  return { root, cleanup: () => rm(root, { recursive: true, force: true }) };
}
