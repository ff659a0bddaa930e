import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { scaffoldPlugin } from '@quail/testkit';

const run = promisify(execFile);
const checkout = resolve(import.meta.dirname, '../../..');

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'quail-scaffold-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

/** Gives the new package the node_modules `pnpm install` would: links into this checkout. */
async function linkDependencies(pkg: string): Promise<void> {
  const links: Record<string, string> = {
    '@quail/core': join(checkout, 'packages/core'),
    '@quail/testkit': join(checkout, 'packages/testkit'),
    '@types/node': join(checkout, 'node_modules/@types/node'),
    typescript: join(checkout, 'node_modules/typescript'),
    vitest: join(checkout, 'node_modules/vitest'),
  };
  for (const [name, target] of Object.entries(links)) {
    await mkdir(join(pkg, 'node_modules', name, '..'), { recursive: true });
    await symlink(target, join(pkg, 'node_modules', name));
  }
}

describe('scaffoldPlugin', () => {
  it('writes a plugin package whose own test passes against a real server and which compiles', async () => {
    const pkg = join(dir, 'quail-plugin-no-strangers');
    const made = await scaffoldPlugin(pkg, 'no-strangers');
    expect(made.packageName).toBe('quail-plugin-no-strangers');
    expect(made.files.sort()).toEqual(['.gitignore', 'README.md', 'package.json', 'src/index.ts', 'test/plugin.test.ts', 'tsconfig.json']);
    const manifest = JSON.parse(await readFile(join(pkg, 'package.json'), 'utf8'));
    expect(manifest.dependencies['@quail/core']).toBe(`link:${join(checkout, 'packages/core')}`);
    expect(manifest.devDependencies['@quail/testkit']).toBe(`link:${join(checkout, 'packages/testkit')}`);
    expect(await readFile(join(pkg, 'src/index.ts'), 'utf8')).toContain("name: 'no-strangers'");

    await linkDependencies(pkg);
    const test = await run(process.execPath, [join(pkg, 'node_modules/vitest/vitest.mjs'), 'run', '--root', pkg], { cwd: pkg, env: { ...process.env, CI: 'true', NO_COLOR: '1', FORCE_COLOR: '0' } });
    expect(test.stdout.replace(/\x1b\[[0-9;]*m/g, '')).toMatch(/Tests\s+2 passed \(2\)/);
    await run(process.execPath, [join(pkg, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: pkg });
    const plugin = (await import(join(pkg, 'dist/index.js'))).default;
    expect(plugin.name).toBe('no-strangers');
  }, 120_000);

  it('refuses names that are not package-safe', async () => {
    for (const bad of ['', 'Upper', '../up', 'a b', 'x--y', '-lead', 'trail-', 'a/b', `a${'b'.repeat(70)}`]) {
      await expect(scaffoldPlugin(join(dir, 'p'), bad)).rejects.toThrow(/lower-case letters, digits and single dashes/);
    }
  });

  it('refuses a directory that already has files', async () => {
    await writeFile(join(dir, 'keep.txt'), 'mine');
    await expect(scaffoldPlugin(dir, 'ok')).rejects.toThrow(/is not empty/);
    expect(await readFile(join(dir, 'keep.txt'), 'utf8')).toBe('mine');
  });

  it('uses the dependency specs it is given', async () => {
    await scaffoldPlugin(join(dir, 'p'), 'ok', { quailDependency: () => '^0.1.0' });
    const manifest = JSON.parse(await readFile(join(dir, 'p/package.json'), 'utf8'));
    expect([manifest.dependencies['@quail/core'], manifest.devDependencies['@quail/testkit']]).toEqual(['^0.1.0', '^0.1.0']);
  });
});
