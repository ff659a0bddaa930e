import { chmod, mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkControlPermissions } from '../src/daemon/permissions.js';
import { tempDir } from './helpers.js';

describe('control permissions (qmail paternalism)', () => {
  it('accepts a root nobody else can write, symlinks included', async () => {
    const { dir, cleanup } = await tempDir();
    await mkdir(join(dir, 'control'), { mode: 0o755 });
    await writeFile(join(dir, 'control', 'me'), 'mx.example.test\n', { mode: 0o644 });
    await symlink('/etc/hostname', join(dir, 'control', 'linked'));
    await chmod(dir, 0o755);
    await expect(checkControlPermissions(dir)).resolves.toBeUndefined();
    await cleanup();
  });

  it('refuses a world-writable control directory or control file, naming it', async () => {
    const { dir, cleanup } = await tempDir();
    await mkdir(join(dir, 'control'), { mode: 0o755 });
    await chmod(dir, 0o755);
    await writeFile(join(dir, 'control', 'plugins'), './site-plugin.mjs\n');
    await chmod(join(dir, 'control', 'plugins'), 0o666);
    await expect(checkControlPermissions(dir)).rejects.toThrow(/^control\/plugins is writable by everyone \(mode 666\)/);
    await chmod(join(dir, 'control', 'plugins'), 0o644);
    await chmod(join(dir, 'control'), 0o777);
    await expect(checkControlPermissions(dir)).rejects.toThrow(/^control is writable by everyone \(mode 777\)/);
    await cleanup();
  });
});
