import { writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigErrors, ControlDirectory, control, createServer, definePlugin, qmailFiles, type ControlSpecs } from '@quail/core';
import { tempRoot } from '@quail/core/testing';
import { recordingLogger } from './helpers.js';

const specs = {
  me: qmailFiles.me,
  databytes: qmailFiles.databytes,
  rcpthosts: qmailFiles.rcpthosts,
  defaultdomain: qmailFiles.defaultdomain,
  virtualdomains: qmailFiles.virtualdomains,
  concurrencyremote: qmailFiles.concurrencyremote,
  servercert: control.text(),
  listen: control.list({
    schema: { items: { pattern: '^[^:]+:\\d+$' } },
    parse: (raw, fail) =>
      raw.map((entry, i) => {
        const port = Number(entry.split(':')[1]);
        if (port > 65535) fail(i, `port ${port} is out of range`);
        return { host: entry.split(':')[0]!, port };
      }),
  }),
} satisfies ControlSpecs;

async function load(files: Record<string, string | Buffer>) {
  const { root, cleanup } = await tempRoot();
  for (const [name, content] of Object.entries(files)) await writeFile(join(root, 'control', name), content);
  const dir = new ControlDirectory(root);
  dir.declare('test', specs);
  try {
    return await dir.load();
  } finally {
    await cleanup();
  }
}

async function loadErrors(files: Record<string, string | Buffer>): Promise<string[]> {
  try {
    await load(files);
  } catch (err) {
    if (err instanceof ConfigErrors) return err.errors.map((e) => e.message);
    throw err;
  }
  throw new Error('expected the control files to be refused');
}

describe('control files', () => {
  it('applies qmail defaults, following me', async () => {
    const snap = await load({ me: 'mx.example.test\n' });
    expect(snap.me).toBe('mx.example.test');
    expect(snap.get('defaultdomain')).toBe('mx.example.test');
    expect(snap.get('rcpthosts')).toEqual(['mx.example.test']);
    expect(snap.get('databytes')).toBe(0);
    expect(snap.get('concurrencyremote')).toBe(20);
    const entry = snap.entries.find((e) => e.file === 'databytes')!;
    expect(entry).toMatchObject({ isDefault: true, value: 0, declaredBy: ['test'] });
    expect(snap.entries.find((e) => e.file === 'me')).toMatchObject({ isDefault: false, value: 'mx.example.test' });
  });

  it('reads single values from the first line, ignoring trailing blanks and CRLF', async () => {
    const snap = await load({ me: 'mx.example.test \t\r\nsecond line\r\n', databytes: '  1048576\r\n' });
    expect(snap.me).toBe('mx.example.test');
    expect(snap.get('databytes')).toBe(1048576);
  });

  it('reads lists without comments or blank lines', async () => {
    const snap = await load({ rcpthosts: '# ours\r\nexample.test\r\n\r\n.example.test   \nexample.org\n' });
    expect(snap.get('rcpthosts')).toEqual(['example.test', '.example.test', 'example.org']);
  });

  it('reads key:value maps: first colon splits, keys lower-cased, last line wins', async () => {
    const snap = await load({ virtualdomains: 'Example.COM:example.com\n:alias-catchall\nexample.com:other\nx@y.test:a:b\n' });
    expect(snap.get('virtualdomains')).toEqual({ 'example.com': 'other', '': 'alias-catchall', 'x@y.test': 'a:b' });
  });

  it("gives each plugin its parse result, and get() the value as read", async () => {
    const snap = await load({ listen: '127.0.0.1:2525\n0.0.0.0:25\n' });
    expect(snap.get('listen')).toEqual(['127.0.0.1:2525', '0.0.0.0:25']);
    expect(snap.configFor('test').listen).toEqual([
      { host: '127.0.0.1', port: 2525 },
      { host: '0.0.0.0', port: 25 },
    ]);
  });

  it('keeps text files whole', async () => {
    const pem = '-----BEGIN CERTIFICATE-----\nabc\n-----END CERTIFICATE-----\n';
    expect((await load({ servercert: pem })).get('servercert')).toBe(pem);
  });

  it('reads a control file that is a symbolic link, and skips a dangling one', async () => {
    const { root, cleanup } = await tempRoot({ 'shared-rcpthosts': 'linked.example\n' });
    const { symlink } = await import('node:fs/promises');
    await symlink(join(root, 'control', 'shared-rcpthosts'), join(root, 'control', 'rcpthosts'));
    await symlink(join(root, 'nowhere'), join(root, 'control', 'databytes'));
    const dir = new ControlDirectory(root);
    dir.declare('test', specs);
    const snap = await dir.load();
    expect(snap.get('rcpthosts')).toEqual(['linked.example']);
    expect(snap.entries.find((e) => e.file === 'databytes')).toMatchObject({ isDefault: true, value: 0 });
    await cleanup();
  });

  it('lists files that no plugin declares as unknown, without failing', async () => {
    const snap = await load({ 'concurrencylocall': '5\n', '.hidden': 'x', 'rcpthosts~': 'x' });
    expect(snap.unknown).toEqual(['concurrencylocall']);
  });

  it('refuses a bad integer naming file and line', async () => {
    expect(await loadErrors({ databytes: '# limit\nten megabytes\n' })).toEqual(['control/databytes:2: not an integer: "ten megabytes"']);
  });

  it('refuses binary data', async () => {
    expect(await loadErrors({ rcpthosts: Buffer.from('example.test\nab\0cd\n') })).toEqual([
      'control/rcpthosts:2: contains a NUL byte (binary data is not a control file)',
    ]);
    const errs = await loadErrors({ servercert: Buffer.from('line\nline\n\0') });
    expect(errs).toEqual(['control/servercert:3: contains a NUL byte']);
  });

  it('refuses a 1 MB line', async () => {
    expect(await loadErrors({ rcpthosts: `example.test\n${'a'.repeat(1024 * 1024)}\n` })).toEqual([
      'control/rcpthosts:2: line longer than 4096 characters',
    ]);
  });

  it('reports schema errors with file and line, all at once', async () => {
    const errs = await loadErrors({
      concurrencyremote: '5000\n',
      rcpthosts: 'example.test\n# comment\nbad host.test\n',
      listen: '127.0.0.1:25\nnot-a-listener\n',
    });
    expect(errs).toContain('control/concurrencyremote:1: must be <= 1000 (got 5000)');
    expect(errs).toContain('control/rcpthosts:3: must match pattern "^[^\\s@]*$" (got "bad host.test")');
    expect(errs).toContain('control/listen:2: must match pattern "^[^:]+:\\d+$" (got "not-a-listener")');
  });

  it('reports errors found by a parse function with the line', async () => {
    expect(await loadErrors({ listen: '127.0.0.1:25\n\n127.0.0.1:70000\n' })).toEqual(['control/listen:3: port 70000 is out of range']);
  });

  it('refuses two plugins declaring one file differently', () => {
    const dir = new ControlDirectory('/nonexistent');
    dir.declare('a', { databytes: qmailFiles.databytes });
    dir.declare('b', { databytes: qmailFiles.databytes });
    expect(() => dir.declare('c', { databytes: control.int({ default: 5 }) })).toThrow('control/databytes is declared differently by a, b and c');
  });

  it('runs every declaring plugin\'s schema and parse for a shared file', async () => {
    const { root, cleanup } = await tempRoot({ 'shared.list': 'a\nbb\n' });
    const dir = new ControlDirectory(root);
    dir.declare('short', { 'shared.list': control.list({ schema: { items: { maxLength: 1 } } }) });
    dir.declare('counter', { 'shared.list': control.list({ parse: (raw) => raw.length }) });
    await expect(dir.load()).rejects.toThrow('control/shared.list:2: must NOT have more than 1 characters (got "bb")');
    await writeFile(join(root, 'control', 'shared.list'), 'a\nb\n');
    const snap = await dir.load();
    expect(snap.configFor('short')['shared.list']).toEqual(['a', 'b']);
    expect(snap.configFor('counter')['shared.list']).toBe(2);
    await cleanup();
  });

  it('does not call parse for an absent file without a default', async () => {
    const { root, cleanup } = await tempRoot();
    const dir = new ControlDirectory(root);
    dir.declare('tls', { 'servercert.pem': control.text({ parse: (raw) => raw.length }) });
    expect((await dir.load()).configFor('tls')['servercert.pem']).toBeUndefined();
    await cleanup();
  });

  it('treats a missing control directory as all defaults', async () => {
    const dir = new ControlDirectory('/nonexistent/quail');
    dir.declare('t', { databytes: qmailFiles.databytes });
    expect((await dir.load()).get('databytes')).toBe(0);
  });
});

describe('reload', () => {
  it('keeps the old configuration when the new one is invalid, and logs why', async () => {
    const { root, cleanup } = await tempRoot({ me: 'mx.example.test\n', databytes: '1000\n' });
    const seen: number[] = [];
    const p = definePlugin({
      name: 'limits',
      control: { databytes: qmailFiles.databytes },
      register(ctx) {
        ctx.hooks.reload.tapPromise(ctx.name, async () => void seen.push(ctx.config.databytes));
      },
    });
    const { logger, records } = recordingLogger();
    const server = createServer({ root, plugins: [p], logger });
    await server.start();
    expect(server.control.get('databytes')).toBe(1000);

    await writeFile(join(root, 'control', 'databytes'), 'lots\n');
    expect(await server.reload()).toBe(false);
    expect(server.control.get('databytes')).toBe(1000);
    expect(records.some((r) => String(r.msg).includes('control/databytes:1: not an integer: "lots"'))).toBe(true);

    await writeFile(join(root, 'control', 'databytes'), '2000\n');
    expect(await server.reload()).toBe(true);
    expect(server.control.get('databytes')).toBe(2000);
    expect(seen).toEqual([2000]);
    await server.stop();
    await cleanup();
  });

  it('stops start-up on a bad control file with file and line', async () => {
    const { root, cleanup } = await tempRoot({ databytes: '12x\n' });
    const p = definePlugin({ name: 'limits', control: { databytes: qmailFiles.databytes }, register() {} });
    const server = createServer({ root, plugins: [p], log: { level: 'silent' } });
    await expect(server.start()).rejects.toThrow('control/databytes:1: not an integer: "12x"');
    await cleanup();
  });
});

describe('control/plugins', () => {
  it('loads plugins listed by relative path, in order', async () => {
    const { root, cleanup } = await tempRoot({ plugins: '# site plugins\n./plugins/first.mjs\n./plugins/second.mjs\n' });
    await mkdir(join(root, 'plugins'));
    const core = new URL('../src/index.ts', import.meta.url).href;
    for (const name of ['first', 'second']) {
      await writeFile(
        join(root, 'plugins', `${name}.mjs`),
        `export default (await import(${JSON.stringify(core)})).definePlugin({ name: '${name}', register() {} });\n`,
      );
    }
    const server = createServer({ root, log: { level: 'silent' } });
    await server.start();
    expect(server.plugins).toEqual(['first', 'second']);
    await server.stop();
    await cleanup();
  });

  it('names the line that cannot be loaded', async () => {
    const { root, cleanup } = await tempRoot({ plugins: './missing.mjs\n' });
    const server = createServer({ root, log: { level: 'silent' } });
    await expect(server.start()).rejects.toThrow(/control\/plugins: cannot load \.\/missing\.mjs/);
    await cleanup();
  });

  it('refuses a module that does not export a plugin', async () => {
    const { root, cleanup } = await tempRoot({ plugins: './not-a-plugin.mjs\n' });
    await writeFile(join(root, 'not-a-plugin.mjs'), 'export default { name: "x" };\n');
    const server = createServer({ root, log: { level: 'silent' } });
    await expect(server.start()).rejects.toThrow('control/plugins: ./not-a-plugin.mjs does not export a plugin');
    await cleanup();
  });
});
