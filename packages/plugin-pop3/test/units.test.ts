import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { ManualClock } from '@quail/core/testing';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LineConverter } from '@quail/plugin-maildir';
import {
  DotStuffTransform,
  LineReader,
  LOCK_FILE,
  LoginThrottle,
  MailboxLocks,
  parseCommand,
  parseListenLine,
  parseMessageNumber,
  parsePlaintextRule,
  plaintextAllowed,
  uidlOf,
  type PlaintextRule,
} from '../src/index.js';
import { multilineResponse } from '../src/dot-stuff.js';
import { decodeBase64, parseCramResponse, parsePlain } from '../src/sasl.js';

async function stuff(chunks: Array<string | Buffer>): Promise<string> {
  const out: Buffer[] = [];
  const source = Readable.from(chunks.map((c) => (Buffer.isBuffer(c) ? c : Buffer.from(c, 'latin1'))));
  for await (const chunk of source.pipe(new DotStuffTransform())) out.push(chunk as Buffer);
  return Buffer.concat(out).toString('latin1');
}

/** What a client does with a multi-line response: drop the terminator, undo the stuffing. */
function unstuff(wire: string): string {
  expect(wire.endsWith('.\r\n')).toBe(true);
  const lines = wire.slice(0, -3).split('\r\n');
  expect(lines.pop()).toBe('');
  return lines.map((l) => (l.startsWith('.') ? l.slice(1) : l)).join('\r\n') + (lines.length ? '\r\n' : '');
}

describe('DotStuffTransform', () => {
  it('doubles leading dots, ends lines in CRLF and appends the terminator', async () => {
    expect(await stuff(['a\r\n.b\r\n..c\r\n.\r\n'])).toBe('a\r\n..b\r\n...c\r\n..\r\n.\r\n');
    expect(await stuff(['bare\nlf\n'])).toBe('bare\r\nlf\r\n.\r\n');
    expect(await stuff(['no end'])).toBe('no end\r\n.\r\n');
    expect(await stuff([])).toBe('.\r\n');
    expect(await stuff(['.'])).toBe('..\r\n.\r\n');
  });

  it('keeps its state across chunk boundaries', async () => {
    expect(await stuff(['a\r', '\n', '.b\r\n'])).toBe('a\r\n..b\r\n.\r\n');
    expect(await stuff(['a\r\n', '.', '.x\n'])).toBe('a\r\n...x\r\n.\r\n');
    expect(await stuff(['x.', '\n.', 'y'])).toBe('x.\r\n..y\r\n.\r\n');
    expect(await stuff(['a\r\n', Buffer.alloc(0), '.'])).toBe('a\r\n..\r\n.\r\n');
  });

  it('round-trips any text with CRLF or bare LF line ends through any chunking (property)', async () => {
    const lineArb = fc.record({ text: fc.stringMatching(/^[.a-z ]{0,12}$/), bare: fc.boolean() });
    await fc.assert(
      fc.asyncProperty(fc.array(lineArb, { maxLength: 20 }), fc.array(fc.integer({ min: 1, max: 7 }), { maxLength: 30 }), async (lines, cuts) => {
        const text = lines.map((l) => `${l.text}${l.bare ? '\n' : '\r\n'}`).join('');
        const chunks: string[] = [];
        let at = 0;
        for (const cut of cuts) {
          if (at >= text.length) break;
          chunks.push(text.slice(at, at + cut));
          at += cut;
        }
        if (at < text.length) chunks.push(text.slice(at));
        const wire = await stuff(chunks);
        expect(wire.split('\r\n').slice(0, -2).every((l) => !l.startsWith('.') || l.startsWith('..'))).toBe(true);
        expect(wire.replace(/\r\n/g, '')).not.toContain('\n');
        expect(unstuff(wire)).toBe(lines.map((l) => `${l.text}\r\n`).join(''));
      }),
      { numRuns: 300 },
    );
  });
});

describe('multilineResponse (a whole RETR/TOP answer in one Buffer)', () => {
  it('puts the status line in front of what DotStuffTransform makes', async () => {
    expect(multilineResponse('+OK 3 octets', Buffer.from('.a\n')).toString('latin1')).toBe('+OK 3 octets\r\n..a\r\n.\r\n');
    expect(multilineResponse('+OK ', Buffer.alloc(0)).toString('latin1')).toBe('+OK \r\n.\r\n');
    expect(multilineResponse('+OK ', Buffer.from('no end')).toString('latin1')).toBe('+OK \r\nno end\r\n.\r\n');
    expect(multilineResponse('+OK ', Buffer.from('\n\r\n.\r\n')).toString('latin1')).toBe('+OK \r\n\r\n\r\n..\r\n.\r\n');
  });

  it('cuts TOP after the header, the empty line and n body lines', () => {
    const message = Buffer.from('A: 1\r\nB: 2\n\r\n.one\ntwo\r\nthree');
    expect(multilineResponse('+OK ', message, 0).toString('latin1')).toBe('+OK \r\nA: 1\r\nB: 2\r\n\r\n.\r\n');
    expect(multilineResponse('+OK ', message, 2).toString('latin1')).toBe('+OK \r\nA: 1\r\nB: 2\r\n\r\n..one\r\ntwo\r\n.\r\n');
    expect(multilineResponse('+OK ', message, 99).toString('latin1')).toBe('+OK \r\nA: 1\r\nB: 2\r\n\r\n..one\r\ntwo\r\nthree\r\n.\r\n');
  });

  it('is byte for byte the streamed answer, for RETR and for any TOP count (property)', async () => {
    const lineArb = fc.record({ text: fc.stringMatching(/^[.a-z\r ]{0,12}$/), bare: fc.boolean() });
    await fc.assert(
      fc.asyncProperty(fc.array(lineArb, { maxLength: 20 }), fc.boolean(), fc.option(fc.nat(6)), async (lines, ended, bodyLines) => {
        let text = lines.map((l) => `${l.text}${l.bare ? '\n' : '\r\n'}`).join('');
        if (!ended) text += 'tail';
        const message = Buffer.from(text, 'latin1');
        const cut = bodyLines === null ? [message] : new LineConverter({ bodyLines }).convert(message);
        const streamed = await stuff(cut);
        const whole = multilineResponse('+OK x', message, bodyLines ?? undefined).toString('latin1');
        expect(whole).toBe(`+OK x\r\n${streamed}`);
      }),
      { numRuns: 500 },
    );
  });

  it('answers stay intact while later answers are built (shared space)', () => {
    const first = multilineResponse('+OK ', Buffer.from('first\n'));
    const big = multilineResponse('+OK ', Buffer.alloc(100_000, 0x61));
    const many = Array.from({ length: 200 }, (_, i) => multilineResponse('+OK ', Buffer.from(`message ${i}\n`.repeat(100))));
    expect(first.toString()).toBe('+OK \r\nfirst\r\n.\r\n');
    expect(big.length).toBe(4 + 2 + 100_000 + 2 + 3);
    many.forEach((m, i) => expect(m.toString()).toBe(`+OK \r\n${`message ${i}\r\n`.repeat(100)}.\r\n`));
  });
});

describe('LineReader', () => {
  it('splits at LF, drops one CR, and keeps partial lines for the next chunk', () => {
    const reader = new LineReader(100);
    expect(reader.push(Buffer.from('USER a\r\nPASS'))).toEqual([{ kind: 'line', line: Buffer.from('USER a') }]);
    expect(reader.push(Buffer.from(' b\nNOOP\r'))).toEqual([{ kind: 'line', line: Buffer.from('PASS b') }]);
    expect(reader.push(Buffer.from('\n'))).toEqual([{ kind: 'line', line: Buffer.from('NOOP') }]);
    expect(reader.push(Buffer.from('\r\r\n'))).toEqual([{ kind: 'line', line: Buffer.from('\r') }]);
  });

  it('reports an over-long line once and resynchronises at the next LF, without buffering it', () => {
    const reader = new LineReader(16);
    expect(reader.push(Buffer.from('x'.repeat(16) + '\r\n'))).toEqual([{ kind: 'line', line: Buffer.from('x'.repeat(16)) }]);
    expect(reader.push(Buffer.from('y'.repeat(17) + '\n'))).toEqual([{ kind: 'too-long' }]);
    const events = [];
    const chunk = Buffer.alloc(1024 * 1024, 0x41);
    for (let i = 0; i < 10; i++) events.push(...reader.push(chunk));
    expect(events).toEqual([{ kind: 'too-long' }]);
    expect(reader.push(Buffer.from('still long\nNOOP\n'))).toEqual([{ kind: 'line', line: Buffer.from('NOOP') }]);
  });

  it('forgets buffered input on reset (STLS)', () => {
    const reader = new LineReader(100);
    reader.push(Buffer.from('USER inj'));
    reader.reset();
    expect(reader.push(Buffer.from('ected\nCAPA\n'))).toEqual([
      { kind: 'line', line: Buffer.from('ected') },
      { kind: 'line', line: Buffer.from('CAPA') },
    ]);
  });
});

describe('command parsing', () => {
  it('splits keyword and argument the qmail-popup way', () => {
    expect(parseCommand('user  Joe ')).toEqual({ verb: 'USER', rest: 'Joe ', args: ['Joe'] });
    expect(parseCommand('PASS a b  c')).toEqual({ verb: 'PASS', rest: 'a b  c', args: ['a', 'b', 'c'] });
    expect(parseCommand('')).toEqual({ verb: '', rest: '', args: [] });
    expect(parseCommand('\tstat')).toEqual({ verb: 'STAT', rest: '', args: [] });
  });

  it('checks message numbers', () => {
    expect(parseMessageNumber('3', 3)).toEqual({ ok: true, value: 3 });
    expect(parseMessageNumber('0003', 3)).toEqual({ ok: true, value: 3 });
    expect(parseMessageNumber('000', 3)).toEqual({ ok: false, error: 'messages are counted from 1' });
    expect(parseMessageNumber('4', 3)).toEqual({ ok: false, error: 'not that many messages' });
    expect(parseMessageNumber('+1', 3)).toEqual({ ok: false, error: 'syntax error' });
    expect(parseMessageNumber('1e2', 300)).toEqual({ ok: false, error: 'syntax error' });
    expect(parseMessageNumber(undefined, 3)).toEqual({ ok: false, error: 'syntax error' });
  });

  it('decodes SASL data strictly', () => {
    expect(decodeBase64('=')).toEqual(Buffer.alloc(0));
    expect(decodeBase64('YWJj')).toEqual(Buffer.from('abc'));
    expect(decodeBase64('YWJ')).toBeUndefined();
    expect(decodeBase64('YW=j')).toBeUndefined();
    expect(decodeBase64('Y W J j')).toBeUndefined();
    expect(parsePlain(Buffer.from('\0joe\0pw'))).toEqual({ authzid: '', username: 'joe', password: 'pw' });
    expect(parsePlain(Buffer.from('joe\0pw'))).toBeUndefined();
    expect(parsePlain(Buffer.from('\0joe\0pw\0more'))).toBeUndefined();
    expect(parsePlain(Buffer.from('\0\0pw'))).toBeUndefined();
    expect(parseCramResponse(Buffer.from(`joe ${'A'.repeat(32)}`))).toEqual({ username: 'joe', digest: 'a'.repeat(32) });
    expect(parseCramResponse(Buffer.from('joe short'))).toBeUndefined();
  });

  it('keeps valid Maildir names as UIDL values and hashes anything RFC 1939 does not allow', () => {
    expect(uidlOf('1700000000.M1P2.host')).toBe('1700000000.M1P2.host');
    const long = 'x'.repeat(71);
    expect(uidlOf(long)).toMatch(/^[0-9a-f]{64}$/);
    expect(uidlOf('with space')).toMatch(/^[0-9a-f]{64}$/);
    expect(uidlOf('with space')).toBe(uidlOf('with space'));
  });
});

describe('control file values', () => {
  it('parses listen lines', () => {
    expect(parseListenLine('127.0.0.1:110')).toEqual({ host: '127.0.0.1', port: 110 });
    expect(parseListenLine(':995')).toEqual({ host: '0.0.0.0', port: 995 });
    expect(parseListenLine('110')).toEqual({ host: '0.0.0.0', port: 110 });
    expect(parseListenLine('[::1]:110')).toEqual({ host: '::1', port: 110 });
    expect(parseListenLine('mail.example.com:110')).toEqual({ host: 'mail.example.com', port: 110 });
    expect(parseListenLine('::1:110')).toMatch(/brackets/);
    expect(parseListenLine('[nope]:110')).toMatch(/IPv6/);
    expect(parseListenLine('host:99999')).toMatch(/port/);
    expect(parseListenLine('bad host:1')).toMatch(/host name/);
  });

  it('matches pop3d.plaintext rules', () => {
    const rules = ['10.0.0.0/8', '192.0.2.7', '2001:db8::/32'].map((r) => parsePlaintextRule(r) as PlaintextRule);
    expect(plaintextAllowed(rules, '10.1.2.3')).toBe(true);
    expect(plaintextAllowed(rules, '192.0.2.7')).toBe(true);
    expect(plaintextAllowed(rules, '192.0.2.8')).toBe(false);
    expect(plaintextAllowed(rules, '2001:db8::1')).toBe(true);
    expect(plaintextAllowed([], '10.1.2.3')).toBe(false);
    expect(plaintextAllowed([parsePlaintextRule('*') as PlaintextRule], '203.0.113.1')).toBe(true);
    expect(parsePlaintextRule('10.0.0.0/33')).toMatch(/prefix/);
    expect(parsePlaintextRule('example.com')).toMatch(/not an IP/);
    expect(parsePlaintextRule('1.2.3.4/8/9')).toMatch(/not an IP/);
  });
});

describe('LoginThrottle', () => {
  it('counts failures per address, grows the delay, forgets after a while, and stays bounded', async () => {
    const clock = new ManualClock();
    const throttle = new LoginThrottle(clock, { maxAddresses: 3, forgetAfterMs: 60_000 });
    expect(throttle.delayFor('192.0.2.1', 1000)).toBe(1000);
    throttle.fail('192.0.2.1');
    throttle.fail('192.0.2.1');
    expect(throttle.delayFor('192.0.2.1', 1000)).toBe(2000);
    expect(throttle.delayFor('192.0.2.1', 20_000)).toBe(30_000);
    for (let i = 2; i <= 5; i++) throttle.fail(`192.0.2.${i}`);
    expect(throttle.size).toBe(3);
    expect(throttle.failures('192.0.2.1')).toBe(0);
    throttle.succeed('192.0.2.5');
    expect(throttle.failures('192.0.2.5')).toBe(0);
    await clock.advance(60_001);
    expect(throttle.failures('192.0.2.4')).toBe(0);
  });
});

describe('MailboxLocks', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pop3-lock-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('locks a mailbox once per process and writes the pid into the lock file', async () => {
    const locks = new MailboxLocks();
    const lock = await locks.acquire(dir, 'a');
    expect(lock).toBeDefined();
    expect(await readFile(join(dir, LOCK_FILE), 'utf8')).toBe(`${process.pid}\n`);
    expect(await locks.acquire(dir, 'b')).toBeUndefined();
    await lock!.release();
    await lock!.release();
    expect(await locks.acquire(dir, 'c')).toBeDefined();
  });

  it('respects a lock file of a live process and takes over one of a dead process', async () => {
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'], { stdio: 'ignore' });
    try {
      await writeFile(join(dir, LOCK_FILE), `${child.pid}\n`);
      const locks = new MailboxLocks();
      expect(await locks.acquire(dir, 'a')).toBeUndefined();
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill();
      await exited;
      const lock = await locks.acquire(dir, 'b');
      expect(lock).toBeDefined();
      expect(await readFile(join(dir, LOCK_FILE), 'utf8')).toBe(`${process.pid}\n`);
    } finally {
      child.kill();
    }
  });

  it('takes over a leftover lock file of its own process and one with garbage in it', async () => {
    await writeFile(join(dir, LOCK_FILE), `${process.pid}\n`);
    const locks = new MailboxLocks();
    const lock = await locks.acquire(dir, 'a');
    expect(lock).toBeDefined();
    await lock!.release();
    await writeFile(join(dir, LOCK_FILE), 'not a pid');
    expect(await locks.acquire(dir, 'b')).toBeDefined();
  });
});
