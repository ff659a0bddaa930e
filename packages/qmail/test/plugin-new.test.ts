import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, quail, tempDir } from './helpers.js';

describe('quail plugin new', () => {
  beforeAll(assertBuilt);

  it('scaffolds a plugin package with a test', async () => {
    const { dir, cleanup } = await tempDir();
    const target = join(dir, 'helo-policy');
    const r = await quail(['plugin', 'new', 'helo-policy', target]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`created quail-plugin-helo-policy in ${target}`);
    const pkg = JSON.parse(await readFile(join(target, 'package.json'), 'utf8'));
    expect(pkg.name).toBe('quail-plugin-helo-policy');
    expect(await readFile(join(target, 'src', 'index.ts'), 'utf8')).toContain("name: 'helo-policy'");
    expect(await readFile(join(target, 'test', 'plugin.test.ts'), 'utf8')).toContain('@quail/testkit');
    await cleanup();
  });

  it('refuses a bad name and a non-empty directory with a usage error', async () => {
    const { dir, cleanup } = await tempDir();
    const bad = await quail(['plugin', 'new', 'Bad_Name', join(dir, 'x')]);
    expect(bad.code).toBe(100);
    expect(bad.stderr).toMatch(/^quail plugin: plugin name "Bad_Name": use lower-case letters/);
    expect((await quail(['plugin', 'new', 'ok-name', join(dir, 'first')])).code).toBe(0);
    const again = await quail(['plugin', 'new', 'ok-name', join(dir, 'first')]);
    expect(again.code).toBe(100);
    expect(again.stderr).toContain('is not empty');
    expect((await quail(['plugin', 'remove', 'x'])).stderr).toContain('unknown plugin action "remove"');
    await cleanup();
  });
});
