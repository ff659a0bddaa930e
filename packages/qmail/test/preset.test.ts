import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL, fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Tokens } from '@quail/core';
import { PRESET_PACKAGES, createQmailServer, initRoot, presetPlugins } from '@quail/qmail';
import { tempDir } from './helpers.js';

const CORE_DIST = pathToFileURL(fileURLToPath(new URL('../../core/dist/index.js', import.meta.url))).href;

describe('the preset', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeEach(async () => ({ dir, cleanup } = await tempDir()));
  afterEach(() => cleanup());

  it('lists the seven plugins in the contract order', () => {
    expect(presetPlugins().map((p) => p.name)).toEqual(['smtpd', 'pop3', 'queue', 'vpopmail', 'local', 'remote', 'maildir']);
    expect(PRESET_PACKAGES).toEqual(presetPlugins().map((p) => `@quail/plugin-${p.name}`));
  });

  it('loads control/plugins: preset names from its own dependencies, a site plugin relative to the root', async () => {
    const root = join(dir, 'r');
    const listen = { host: '127.0.0.1', port: 0 };
    await initRoot({ root, me: 'mx.test', smtp: listen, submission: listen, pop3: listen });
    await writeFile(
      join(root, 'site-plugin.mjs'),
      `import { definePlugin } from '${CORE_DIST}';\nexport default definePlugin({ name: 'site', register(ctx) { ctx.hooks.init.tap('site', () => {}); } });\n`,
    );
    await writeFile(join(root, 'control', 'plugins'), `${PRESET_PACKAGES.join('\n')}\n./site-plugin.mjs\n`);
    const loaded: string[] = [];
    const server = createQmailServer({ root, log: { level: 'silent' }, onPluginLoaded: (p) => loaded.push(p.name) });
    await server.start();
    try {
      expect(server.plugins).toEqual(['smtpd', 'pop3', 'queue', 'vpopmail', 'local', 'remote', 'maildir', 'site']);
      expect(loaded).toEqual(server.plugins);
      expect((await server.resolve(Tokens.Queue).stat()).messages).toBe(0);
    } finally {
      await server.stop();
    }
  });

  it('uses the preset list when control/plugins is absent, and names a plugin that cannot load', async () => {
    const root = join(dir, 'r');
    const listen = { host: '127.0.0.1', port: 0 };
    await initRoot({ root, me: 'mx.test', smtp: listen, submission: listen, pop3: listen });
    await writeFile(join(root, 'control', 'plugins'), '@quail/plugin-queue\n./missing-plugin.mjs\n');
    await expect(createQmailServer({ root, log: { level: 'silent' } }).start()).rejects.toThrow(/control\/plugins: cannot load \.\/missing-plugin\.mjs/);
    await writeFile(join(root, 'control', 'plugins'), 'constructor\n');
    await expect(createQmailServer({ root, log: { level: 'silent' } }).start()).rejects.toThrow(/constructor/);
    await rm(join(root, 'control', 'plugins'));
    const server = createQmailServer({ root, log: { level: 'silent' } });
    await server.start();
    expect(server.plugins).toEqual(['smtpd', 'pop3', 'queue', 'vpopmail', 'local', 'remote', 'maildir']);
    await server.stop();
  });
});
