import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable, type Readable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  bufferSource,
  ConfigError,
  Connection,
  createLogger,
  createServer,
  systemClock,
  type AuthMechanism,
  type Authenticator,
  type Credentials,
  type Fail,
  type MailUser,
} from '@quail/core';
import { MaildirStore } from '@quail/plugin-maildir';
import { LoginThrottle, MailboxLocks, parseCommand, parseListenLine, parseMessageNumber, parsePlaintextRule, Pop3Session, type Pop3Transport } from '@quail/plugin-pop3';
import { DataDecoder, MAX_ADDRESS, parseListenLines, parsePath, TcpRules } from '@quail/plugin-smtpd';
import { hostileBytes, hostileString, longLine } from './support/arbitraries.js';
import { scaled } from './support/scale.js';

/** The `fail` core hands to a parse function: throws the ConfigError naming the entry. */
const failFor =
  (file: string): Fail =>
  (at, reason) => {
    throw new ConfigError(file, typeof at === 'number' ? at + 1 : 0, reason);
  };

const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((p) => p.join('.'));

describe('tcprules (plugin-smtpd TcpRules)', () => {
  it('any rule lines: compiled, or refused with a ConfigError naming the line; matching any peer never throws', () => {
    fc.assert(
      fc.property(fc.array(hostileString(8), { maxLength: 6 }), ipv4, (lines, ip) => {
        try {
          const rules = TcpRules.parse(lines, failFor('tcp.smtp'));
          const decision = rules.match({ ip, host: 'client.example' });
          expect(['allow', 'deny']).toContain(decision.action);
          for (const value of Object.values(decision.env)) expect(value).not.toMatch(/[\r\n\0]/);
        } catch (err) {
          expect(err).toBeInstanceOf(ConfigError);
          expect((err as Error).message).toMatch(/^control\/tcp\.smtp:\d+: /);
        }
      }),
      { numRuns: scaled(3000) },
    );
  });

  it('huge address ranges are refused instead of expanded', () => {
    expect(() => TcpRules.parse(['0-255.0-255.0-255.0-255:deny'], failFor('tcp.smtp'))).toThrow(/expands to more than/);
    expect(() => TcpRules.parse([`${longLine(10 * 1024 * 1024, '1')}:allow`], failFor('tcp.smtp'))).toThrow(ConfigError);
  });

  it('an exact address beats a prefix, a prefix beats the default, whatever the line order; variables come back as written', () => {
    const value = fc.string({ maxLength: 20 }).map((s) => s.replace(/["\r\n\0]/g, ''));
    fc.assert(
      fc.property(ipv4, fc.integer({ min: 1, max: 3 }), value, fc.boolean(), (ip, keep, relay, exactFirst) => {
        const prefix = `${ip.split('.').slice(0, keep).join('.')}.`;
        const exact = `${ip}:deny`;
        const wide = `${prefix}:allow,RELAYCLIENT="${relay}"`;
        const rules = TcpRules.parse(exactFirst ? [exact, wide, ':deny'] : [':deny', wide, exact], failFor('tcp.smtp'));
        expect(rules.match({ ip }).action).toBe('deny');
        expect(rules.match({ ip }).key).toBe(ip);
        const other = ip.split('.').slice(0, keep).concat(['0', '0', '0']).slice(0, 4);
        other[3] = String((Number(ip.split('.')[3]) + 1) % 256);
        if (other.join('.') !== ip) {
          const decision = rules.match({ ip: other.join('.') });
          expect(decision).toEqual({ action: 'allow', env: { RELAYCLIENT: relay }, key: prefix });
        }
      }),
      { numRuns: scaled(2000) },
    );
  });

  it('a line break or NUL can never be smuggled into a variable', () => {
    for (const v of ['a\r\nRELAYCLIENT=', 'x\0y', 'one\ntwo']) {
      expect(() => TcpRules.parse([`127.:allow,GREETING="${v}"`], failFor('tcp.smtp'))).toThrow(ConfigError);
    }
  });
});

describe('SMTP paths and listener lines (plugin-smtpd parsePath, parseListenLines)', () => {
  it('any MAIL/RCPT argument: never throws; an accepted address has no control bytes and stays within 900 bytes', () => {
    fc.assert(
      fc.property(fc.oneof(hostileString(10), fc.string({ unit: 'binary', maxLength: 60 })), fc.constantFrom('from', 'to'), fc.boolean(), (arg, prefix, strict) => {
        const parsed = parsePath(arg, prefix as 'from' | 'to', strict);
        if (parsed.ok) {
          expect(parsed.address).not.toMatch(/[\0-\x1f\x7f]/);
          expect(Buffer.byteLength(parsed.address)).toBeLessThanOrEqual(MAX_ADDRESS);
          for (const [k, v] of Object.entries(parsed.params)) {
            expect(k).not.toMatch(/[\0-\x1f\x7f]/);
            if (typeof v === 'string') expect(v).not.toMatch(/[\0-\x1f\x7f]/);
          }
        }
      }),
      { numRuns: scaled(5000) },
    );
  });

  it('a plain address comes back unchanged in both modes, with or without a source route', () => {
    const local = fc.stringMatching(/^[a-z0-9][a-z0-9._+-]{0,20}$/);
    const domain = fc.stringMatching(/^[a-z0-9]{1,10}(\.[a-z0-9]{1,10}){1,3}$/);
    fc.assert(
      fc.property(local, domain, fc.boolean(), fc.boolean(), (l, d, strict, routed) => {
        const address = `${l}@${d}`;
        const parsed = parsePath(`FROM:<${routed ? '@relay.example,@b.example:' : ''}${address}> SIZE=100`, 'from', strict);
        expect(parsed).toEqual({ ok: true, address, params: { SIZE: '100' } });
      }),
      { numRuns: scaled(2000) },
    );
  });

  it('a 10 MB address is refused as too long', () => {
    expect(parsePath(`TO:<${longLine(10 * 1024 * 1024)}@example.com>`, 'to', false)).toEqual({ ok: false, reason: 'too-long' });
  });

  it('listener lines: parsed into a host and a port 0-65535, or refused naming the line', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(hostileString(4), fc.stringMatching(/^(\d{1,3}\.){3}\d{1,3}:\d{1,6}$/)), { maxLength: 4 }), (lines) => {
        try {
          for (const l of parseListenLines(lines, failFor('smtpd.listen'))) {
            expect(l.port).toBeGreaterThanOrEqual(0);
            expect(l.port).toBeLessThanOrEqual(65535);
            expect(l.host).not.toMatch(/[\s\0/]/);
          }
        } catch (err) {
          expect(err).toBeInstanceOf(ConfigError);
        }
        for (const line of lines) {
          const pop = parseListenLine(line);
          if (typeof pop !== 'string') expect(pop.port).toBeLessThanOrEqual(65535);
        }
      }),
      { numRuns: scaled(3000) },
    );
  });
});

/** SMTP's DATA transparency: LF lines become CRLF, a leading dot is doubled, `.` CRLF ends it. */
function smtpEncode(lines: Buffer[]): Buffer {
  const out: Buffer[] = [];
  for (const line of lines) out.push(line[0] === 0x2e ? Buffer.from('.') : Buffer.alloc(0), line, Buffer.from('\r\n'));
  out.push(Buffer.from('.\r\n'));
  return Buffer.concat(out);
}

/** Feeds `data` to a decoder in the given chunk sizes; returns the output and how it ended. */
function decodeInChunks(data: Buffer, cuts: number[]): { out: Buffer; kind: string; rest: Buffer } {
  const decoder = new DataDecoder();
  const out: Buffer[] = [];
  let offset = 0;
  const sizes = [...cuts, data.length];
  for (const size of sizes) {
    const chunk = data.subarray(offset, Math.min(data.length, offset + Math.max(1, size)));
    offset += chunk.length;
    const r = decoder.decode(chunk);
    out.push(r.out);
    if (r.kind !== 'more') return { out: Buffer.concat(out), kind: r.kind, rest: r.kind === 'end' ? Buffer.concat([r.rest, data.subarray(offset)]) : Buffer.alloc(0) };
    if (offset >= data.length) break;
  }
  return { out: Buffer.concat(out), kind: 'more', rest: Buffer.alloc(0) };
}

describe('SMTP DATA decoding (plugin-smtpd DataDecoder)', () => {
  const line = fc.uint8Array({ maxLength: 80 }).map((b) => Buffer.from(b.filter((x) => x !== 0x0d && x !== 0x0a)));

  it('encode then decode, in any chunking, gives the message back with LF line ends and what followed the dot', () => {
    fc.assert(
      fc.property(fc.array(line, { maxLength: 30 }), fc.array(fc.integer({ min: 1, max: 40 }), { maxLength: 40 }), fc.string({ maxLength: 20 }), (lines, cuts, after) => {
        const wire = Buffer.concat([smtpEncode(lines), Buffer.from(after)]);
        const r = decodeInChunks(wire, cuts);
        expect(r.kind).toBe('end');
        expect(r.out.equals(Buffer.concat(lines.flatMap((l) => [l, Buffer.from('\n')])))).toBe(true);
        expect(r.rest.toString()).toBe(after);
      }),
      { numRuns: scaled(3000) },
    );
  });

  it('any bytes: the result does not depend on how the stream was cut', () => {
    fc.assert(
      fc.property(hostileBytes(300), fc.array(fc.integer({ min: 1, max: 16 }), { maxLength: 60 }), (data, cuts) => {
        const whole = decodeInChunks(data, []);
        const cut = decodeInChunks(data, cuts);
        expect(cut.kind).toBe(whole.kind);
        expect(cut.out.equals(whole.out)).toBe(true);
        expect(cut.rest.equals(whole.rest)).toBe(true);
        expect(whole.out.length).toBeLessThanOrEqual(data.length);
      }),
      { numRuns: scaled(3000) },
    );
  });
});

describe('POP3 command parsing (plugin-pop3 parseCommand, parseMessageNumber, parsePlaintextRule)', () => {
  it('never throws; message numbers are 1..count or refused with qmail-pop3d texts', () => {
    fc.assert(
      fc.property(fc.oneof(hostileString(8), fc.string({ unit: 'binary', maxLength: 40 })), fc.nat(20), (text, count) => {
        const c = parseCommand(text);
        expect(c.verb).toBe(c.verb.toUpperCase());
        const n = parseMessageNumber(c.args[0], count);
        if (n.ok) {
          expect(n.value).toBeGreaterThanOrEqual(1);
          expect(n.value).toBeLessThanOrEqual(count);
        } else expect(['syntax error', 'messages are counted from 1', 'not that many messages']).toContain(n.error);
        const rule = parsePlaintextRule(text);
        if (typeof rule !== 'string') expect(rule.prefix).toBeLessThanOrEqual(128);
      }),
      { numRuns: scaled(5000) },
    );
  });
});

/* ------------------------------------------------------------------ POP3 state machine */

/** One user, password `pw`, in a table (the Authenticator role). */
class OneUser implements Authenticator {
  constructor(readonly user: MailUser) {}
  mechanisms(): AuthMechanism[] {
    return ['USER', 'PLAIN', 'LOGIN'];
  }
  async authenticate(c: Credentials) {
    return c.username === 'joe' && c.password === 'pw' ? { ok: true as const, user: this.user } : { ok: false as const, reason: 'bad-credentials' as const };
  }
}

/** Records what a session writes; a write after close is a protocol violation the test reports. */
class RecordingTransport implements Pop3Transport {
  secure = false;
  closed = false;
  lines: string[] = [];
  violations: string[] = [];
  send(line: string): void {
    if (this.closed) this.violations.push(`write after close: ${line}`);
    this.lines.push(...line.split('\r\n'));
  }
  async sendStream(source: Readable, ...transforms: Transform[]): Promise<void> {
    const chunks: Buffer[] = [];
    await pipeline([source, ...transforms, new Writable({ write: (c: Buffer, _e, cb) => (chunks.push(c), cb()) })]);
    const text = Buffer.concat(chunks).toString('latin1');
    if (!text.endsWith('\r\n.\r\n')) this.violations.push(`multi-line answer without its final dot: ${JSON.stringify(text.slice(-20))}`);
    this.lines.push(...text.slice(0, -2).split('\r\n'));
  }
  async startTls(): Promise<never> {
    throw new Error('no TLS in this test');
  }
  close(): void {
    this.closed = true;
  }
}

describe('POP3 state machine (plugin-pop3 Pop3Session over a real Maildir)', () => {
  let base: string;
  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), 'quail-rel-pop3-'));
  });
  afterAll(async () => {
    await rm(base, { recursive: true, force: true });
  });

  const number = fc.oneof(fc.integer({ min: -1, max: 7 }).map(String), fc.constantFrom('', '00001', '1x', '99999999999', '+1', ' 1'));
  const command = fc.oneof(
    { weight: 6, arbitrary: number.chain((n) => fc.constantFrom(`DELE ${n}`, `RETR ${n}`, `LIST ${n}`, `UIDL ${n}`, `TOP ${n} 1`, `top ${n} 0`)) },
    { weight: 4, arbitrary: fc.constantFrom('STAT', 'LIST', 'UIDL', 'RSET', 'NOOP', 'LAST', 'CAPA', 'AUTH', 'APOP joe 0123', 'USER joe', 'PASS pw', 'STLS') },
    { weight: 1, arbitrary: fc.constantFrom('PASS wrong', 'AUTH PLAIN', 'AUTH LOGIN', '*', 'QUIT') },
    { weight: 2, arbitrary: hostileString(6) },
  );

  it('any command sequence: no exception, every answer +OK/-ERR, nothing deleted without QUIT, and QUIT removes exactly the acknowledged DELEs', async () => {
    const log = createLogger({ level: 'silent' });
    const store = new MaildirStore({ log });
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.nat(5), fc.array(command, { maxLength: 25 }), fc.boolean(), async (messages, commands, quit) => {
        const home = join(base, `u${run++}`);
        const maildir = join(home, 'Maildir');
        await store.create(maildir);
        for (let i = 0; i < messages; i++) await store.deliver(maildir, bufferSource(Buffer.from(`Subject: ${i}\n\n.line\nbody ${i}\n`)));
        const user: MailUser = { address: 'joe@example.com', name: 'joe', domain: 'example.com', home, maildir, flags: {} };
        const hooks = createServer({ root: home, plugins: [], logger: log }).hooks;
        const connection = new Connection({ protocol: 'pop3', remoteAddress: '127.0.0.1', remotePort: 1, localAddress: '127.0.0.1', localPort: 110 });
        const transport = new RecordingTransport();
        const session = new Pop3Session(
          connection,
          transport,
          { hooks, authenticator: new OneUser(user), mailStore: store, locks: new MailboxLocks(), throttle: new LoginThrottle(systemClock), clock: systemClock, log },
          { hostname: 'pop.example.com', tlsAvailable: false, plaintextWithoutTls: true, failDelayMs: 0, maxBadCommands: 10, maxAuthFailures: 3 },
        );
        session.greet();
        const script = ['USER joe', 'PASS pw', ...commands, ...(quit ? ['QUIT'] : [])];
        let deleted = new Set<string>();
        let quitAcknowledged = false;
        for (const line of script) {
          if (transport.closed) break;
          const before = transport.lines.length;
          const wasTransaction = session.state === 'transaction';
          await session.handle(Buffer.from(line));
          const answer = transport.lines.slice(before);
          if (answer.length > 0) expect(answer[0]).toMatch(/^(\+OK|-ERR|\+ )/);
          if (wasTransaction && /^DELE /i.test(line) && answer[0]?.startsWith('+OK')) deleted.add(line.slice(5));
          if (wasTransaction && /^RSET$/i.test(line) && answer[0]?.startsWith('+OK')) deleted = new Set();
          if (wasTransaction && line === 'QUIT' && answer[0]?.startsWith('+OK')) quitAcknowledged = true;
          if (wasTransaction && line === 'STAT') expect(answer[0]).toMatch(new RegExp(`^\\+OK ${messages - deleted.size} \\d+$`));
        }
        await session.closed();
        expect(transport.violations).toEqual([]);
        const left = (await readdir(join(maildir, 'cur'))).length + (await readdir(join(maildir, 'new'))).length;
        expect(left).toBe(quitAcknowledged ? messages - deleted.size : messages);
        expect(await readdir(join(maildir, 'tmp'))).toEqual([]);
      }),
      { numRuns: scaled(300) },
    );
  });
});
