import { connect } from 'node:net';
import { stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { listenControl, request, type ControlRequest } from '../src/daemon/control-socket.js';
import { parseListen } from '../src/listeners.js';
import { lookupAccount } from '../src/passwd.js';
import { tempDir } from './helpers.js';

/** Sends raw bytes to the socket and returns what comes back before it closes. */
function raw(path: string, data: Buffer | string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(path);
    let got = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => (got += d));
    s.on('error', reject);
    s.on('close', () => resolve(got));
    s.on('connect', () => s.end(data));
  });
}

describe('the control socket', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let path: string;
  const seen: Array<{ req: ControlRequest; body?: Buffer }> = [];
  let server: Awaited<ReturnType<typeof listenControl>>;

  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir());
    path = join(dir, 'quail.sock');
    seen.length = 0;
    server = await listenControl(path, async (req, body) => {
      seen.push({ req, ...(body && { body }) });
      if (req.cmd === 'boom') throw new Error('handler failed');
      return { ok: true, text: `did ${req.cmd}${body ? ` with ${body.length} bytes` : ''}` };
    });
  });
  afterEach(async () => {
    server.close();
    await cleanup();
  });

  it('is a socket only its owner may use', async () => {
    expect((await stat(path)).mode & 0o777).toBe(0o600);
  });

  it('answers a request, with and without a body (binary bytes kept)', async () => {
    expect(await request(path, { cmd: 'stat' })).toEqual({ ok: true, text: 'did stat' });
    const body = Buffer.from([0, 1, 2, 255, 10, 13, 0]);
    expect(await request(path, { cmd: 'inject' }, body)).toEqual({ ok: true, text: 'did inject with 7 bytes' });
    expect(seen[1]!.body).toEqual(body);
  });

  it('turns a throwing handler into a temporary error answer', async () => {
    expect(await request(path, { cmd: 'boom' })).toEqual({ ok: false, error: 'handler failed', exitCode: 111 });
  });

  it('refuses malformed, hostile and oversized requests without calling the handler', async () => {
    const refused = (text: string) => JSON.parse(text) as { ok: boolean; error: string; exitCode: number };
    expect(refused(await raw(path, 'not json\n'))).toEqual({ ok: false, error: 'malformed control request', exitCode: 100 });
    expect(refused(await raw(path, '{"cmd": 42}\n'))).toMatchObject({ ok: false, exitCode: 100 });
    expect(refused(await raw(path, '[1,2]\n'))).toMatchObject({ ok: false, exitCode: 100 });
    expect(refused(await raw(path, '{"cmd":"inject","size":-1}\n'))).toMatchObject({ error: 'malformed control request' });
    expect(refused(await raw(path, '{"cmd":"inject","size":1e12}\n'))).toMatchObject({ error: 'malformed control request' });
    expect(refused(await raw(path, '{"cmd":"inject","size":2}\nabc'))).toMatchObject({ error: 'more data than announced' });
    expect(refused(await raw(path, '{"cmd":"stat"}\nextra'))).toMatchObject({ error: 'more data than announced' });
    expect(refused(await raw(path, Buffer.alloc(70 * 1024, 0x61)))).toMatchObject({ error: 'request line too long' });
    expect(refused(await raw(path, '{"cmd":"st\0at"}\0\n'))).toMatchObject({ error: 'malformed control request' });
    expect(refused(await raw(path, '{"cmd":"inject","size":10}\nshort'))).toMatchObject({ error: 'the request ended before its announced size' });
    expect(refused(await raw(path, '{"cmd":"stat"}'))).toMatchObject({ error: 'the request ended without a line' });
    expect(seen).toEqual([]);
    expect(JSON.parse(await raw(path, '{"cmd":"stat"}\n'))).toEqual({ ok: true, text: 'did stat' });
  });
});

describe('listener addresses', () => {
  it('reads host:port, [v6]:port and a bare port', () => {
    expect(parseListen('127.0.0.1:2525', '--smtp')).toEqual({ host: '127.0.0.1', port: 2525 });
    expect(parseListen('[::1]:587', '--smtp')).toEqual({ host: '::1', port: 587 });
    expect(parseListen('25', '--smtp')).toEqual({ host: '0.0.0.0', port: 25 });
    expect(parseListen('mail.example.com:0', '--smtp')).toEqual({ host: 'mail.example.com', port: 0 });
  });

  it('refuses anything else, naming the option', () => {
    for (const bad of ['', ':', 'host', 'host:', 'host:65536', 'host:1:2', '::1:25', '[::1]', 'a b:25', 'host:25\n', 'x'.repeat(10_000)]) {
      expect(() => parseListen(bad, '--pop3'), JSON.stringify(bad.slice(0, 20))).toThrow(/^--pop3: expected host:port/);
    }
  });
});

describe('account lookup in a passwd file', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeEach(async () => ({ dir, cleanup } = await tempDir()));
  afterEach(() => cleanup());

  it('finds an account and skips malformed lines', async () => {
    const file = join(dir, 'passwd');
    await writeFile(file, 'broken line\nquail:x:abc:1:::\n\0\nquail:x:991:992:Quail:/var/quail:/usr/sbin/nologin\n');
    expect(lookupAccount('quail', file)).toEqual({ name: 'quail', uid: 991, gid: 992, home: '/var/quail' });
    expect(() => lookupAccount('nobody-here', file)).toThrow(/no such account: nobody-here/);
    for (const bad of ['', '../etc', 'a:b', 'a\nb', 'a b']) expect(() => lookupAccount(bad, file)).toThrow(/not a valid account name/);
    expect(() => lookupAccount('quail', join(dir, 'missing'))).toThrow(/cannot read/);
  });
});
