// Loads quail plugins from the built workspace packages (packages/plugin-<name>/dist).
import { existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const packages = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'packages');

export const core = await import(pathToFileURL(join(packages, 'core', 'dist', 'index.js')).href);

export async function loadPlugin(name) {
  if (name === 'null-queue') return (await import('./null-queue.mjs')).nullQueuePlugin();
  const entry = join(packages, `plugin-${name}`, 'dist', 'index.js');
  if (!existsSync(entry)) throw new Error(`plugin ${name} is not built (${entry} missing)`);
  const mod = await import(pathToFileURL(entry).href);
  const plugin = typeof mod.default === 'function' ? mod.default() : mod.default;
  if (!core.isPlugin(plugin)) throw new Error(`${entry} does not export a plugin as default`);
  return plugin;
}
