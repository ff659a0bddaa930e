import { once } from 'node:events';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import { RawClient, removeCertDir, selfSignedPem, startSmtpd, type TestServer } from './helpers.js';

let t: TestServer | undefined;
afterEach(async () => {
  await t?.stop();
  t = undefined;
});

async function session(port: number): Promise<RawClient> {
  const c = await RawClient.open(port);
  expect(await c.reply()).toMatch(/^220 /);
  return c;
}

/** The server still serves a fresh client normally. */
async function stillServing(port: number): Promise<void> {
  const c = await session(port);
  expect(await c.command('NOOP')).toBe('250 ok');
  expect(await c.command('QUIT')).toBe('221 mx.example.org');
}

/** Deterministic garbage (xorshift), so a failure can be reproduced. */
function garbage(bytes: number, seed = 42): Buffer {
  const out = Buffer.alloc(bytes);
  let x = seed;
  for (let i = 0; i < bytes; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

describe('hostile input', () => {
  it('closes on a 100 KB command line with 421, and keeps serving others', async () => {
    t = await startSmtpd();
    const c = await session(t.port());
    c.write(`MAIL FROM:<${'a'.repeat(100 * 1024)}>\r\n`);
    expect(await c.reply()).toBe('421 Error: Command line too long');
    await c.waitClosed();
    await stillServing(t.port());
  });

  it('answers NUL bytes in commands without crashing', async () => {
    t = await startSmtpd();
    const c = await session(t.port());
    expect(await c.command('NO\0OP')).toBe('502 unimplemented (#5.5.1)');
    expect(await c.command('MAIL FROM:<a\0b@example.net>')).toBe('555 syntax error (#5.5.4)');
    expect(await c.command('HELO \0\0\0')).toBe('250 mx.example.org');
    expect(await c.command('MAIL FROM:<a@example.net>')).toBe('250 ok');
    expect(await c.command('RCPT TO:<joe\0@mx.example.org>')).toBe('555 syntax error (#5.5.4)');
  });

  it('survives binary garbage and answers every line of it', async () => {
    t = await startSmtpd();
    const c = await session(t.port());
    const junk = garbage(256 * 1024);
    c.write(junk);
    c.write('\r\nNOOP\r\n');
    // replies keep coming until the trailing NOOP is answered (or the server closed on an over-long line)
    for (;;) {
      const r = await c.reply();
      if (r === null || r === '250 ok') break;
      expect(r).toMatch(/^(502 unimplemented \(#5\.5\.1\)|5\d\d .*|250 .*|214 .*|252 .*|334 .*|354 .*|421 .*|503 .*)$/s);
    }
    await stillServing(t.port());
    expect(t.messages()).toEqual([]);
  });

  it('keeps up with a pipelined flood without buffering replies without bound', async () => {
    t = await startSmtpd();
    const c = await session(t.port());
    const count = 20_000;
    c.write('NOOP\r\n'.repeat(count));
    let answered = 0;
    while ((await c.reply()) === '250 ok' && ++answered < count);
    expect(answered).toBe(count);
    expect(await c.command('QUIT')).toBe('221 mx.example.org');
  });

  it('queues nothing when the client disconnects in the middle of DATA', async () => {
    t = await startSmtpd();
    const c = await session(t.port());
    await c.command('MAIL FROM:<a@example.net>');
    await c.command('RCPT TO:<joe@mx.example.org>');
    expect(await c.command('DATA')).toBe('354 go ahead');
    c.write(`Subject: cut\r\n\r\n${'x'.repeat(100_000)}\r\n`);
    await expect.poll(() => t!.spoolFiles().length).toBe(1);
    c.close();
    await expect.poll(() => t!.spoolFiles()).toEqual([]);
    expect(t.messages()).toEqual([]);
    await stillServing(t.port());
  });

  it('refuses HTTP requests and cross-protocol junk', async () => {
    t = await startSmtpd();
    const c = await session(t.port());
    expect(await c.command('GET / HTTP/1.1')).toBe('421 HTTP requests not allowed');
    await c.waitClosed();
    await stillServing(t.port());
  });

  it('survives garbage after STARTTLS instead of a TLS handshake', async () => {
    t = await startSmtpd({ 'servercert.pem': selfSignedPem() });
    const c = await session(t.port());
    expect(await c.command('STARTTLS')).toBe('220 ready for tls');
    c.write(garbage(4096));
    await c.waitClosed();
    await stillServing(t.port());
    removeCertDir();
  });
});

/** The garbage collector, exposed at run time (vitest's workers do not start with --expose-gc). */
function collector(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

describe('a 50 MB message', () => {
  it('streams to the queue without holding the message in memory', async () => {
    t = await startSmtpd();
    const c = await session(t.port());
    await c.command('MAIL FROM:<big@example.net>');
    await c.command('RCPT TO:<joe@mx.example.org>');
    expect(await c.command('DATA')).toBe('354 go ahead');
    const line = `${'z'.repeat(998)}\r\n`;
    const chunk = Buffer.from(line.repeat(1024)); // 1,025,024 bytes
    const total = 50;
    // garbage (socket reads, decoded chunks) is collected before each sample, so
    // that what is measured is what the server holds, not what V8 has yet to free
    const gc = collector();
    gc();
    const before = process.memoryUsage().rss;
    let peak = before;
    const sample = () => {
      gc();
      peak = Math.max(peak, process.memoryUsage().rss);
    };
    c.write('Subject: big\r\n\r\n');
    for (let i = 0; i < total; i++) {
      if (!c.socket.write(chunk)) await once(c.socket, 'drain');
      if (i % 5 === 4) sample();
    }
    c.write('.\r\n');
    const r = await c.reply();
    sample();
    expect(r).toMatch(/^250 ok \d+ qp \d+$/);
    const [stored] = t.messages();
    const body = stored!.raw.subarray(stored!.raw.indexOf('\n\n') + 2);
    expect(body.length).toBe(total * 1024 * 999);
    expect(peak - before).toBeLessThan(20 * 1024 * 1024);
  });
});
