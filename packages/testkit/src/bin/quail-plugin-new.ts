#!/usr/bin/env node
import { relative } from 'node:path';
import { scaffoldPlugin } from '../scaffold.js';

const [name, dir] = process.argv.slice(2);
if (!name || name.startsWith('-')) {
  process.stderr.write('usage: quail-plugin-new <name> [directory]\n  creates a plugin package (default directory: ./quail-plugin-<name>)\n');
  process.exit(100);
}
try {
  const made = await scaffoldPlugin(dir ?? `quail-plugin-${name}`, name);
  const where = relative(process.cwd(), made.dir) || '.';
  process.stdout.write(`created ${made.packageName} in ${where}: ${made.files.join(', ')}\nnext: cd ${where} && npx --yes pnpm@10 install && npx --yes pnpm@10 test\n`);
} catch (err) {
  process.stderr.write(`quail-plugin-new: ${(err as Error).message}\n`);
  process.exit(100);
}
