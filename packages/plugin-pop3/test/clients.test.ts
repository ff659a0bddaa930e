import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MailUser } from '@quail/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, sampleMessage, startPop3, type Pop3Fixture } from './helpers.js';

const POPLIB = fileURLToPath(new URL('./clients/poplib_session.py', import.meta.url));
const MESSAGES = [sampleMessage('first', 4), sampleMessage('second', 2)];
const crlfSize = (text: string) => Buffer.byteLength(text.replace(/\n/g, '\r\n'));

interface PoplibResult {
  welcome: string;
  capabilities: string[];
  stat: [number, number];
  list: string[];
  uidl: string[];
  messages: string[];
  top: string[];
  quit: string;
}

async function poplib(mode: string, port: number, user: string, password: string): Promise<PoplibResult> {
  const { stdout } = await run('python3', [POPLIB, mode, String(port), user, password], { timeout: 20_000 });
  return JSON.parse(stdout) as PoplibResult;
}

async function curMessages(user: MailUser): Promise<number> {
  return (await readdir(join(user.maildir, 'cur'))).length + (await readdir(join(user.maildir, 'new'))).length;
}

describe('real POP3 clients over loopback', () => {
  let pop: Pop3Fixture;
  let n = 0;
  beforeAll(async () => {
    pop = await startPop3({ tls: true });
  });
  afterAll(() => pop.cleanup());

  async function freshUser(): Promise<{ login: string; user: MailUser }> {
    const login = `user${++n}@example.com`;
    const user = await pop.addUser(login, `pw ${n}`);
    for (const m of MESSAGES) await pop.deliver(user, m);
    return { login, user };
  }

  for (const mode of ['plain', 'stls', 'pop3s', 'apop'] as const) {
    it(`Python poplib (${mode}) lists, retrieves, deletes at QUIT`, async () => {
      const { login, user } = await freshUser();
      const result = await poplib(mode, mode === 'pop3s' ? pop.securePort : pop.port, login, `pw ${n}`);
      expect(result.welcome).toMatch(/^\+OK <\d+\.\d+\.\d+@pop\.example\.com>$/);
      expect(result.capabilities).toEqual(
        expect.arrayContaining(['TOP', 'UIDL', 'USER', 'SASL', 'RESP-CODES', 'PIPELINING', 'AUTH-RESP-CODE', 'IMPLEMENTATION']),
      );
      expect(result.capabilities.includes('STLS')).toBe(mode === 'plain' || mode === 'apop');
      const sizes = MESSAGES.map(crlfSize);
      expect(result.stat).toEqual([2, sizes[0]! + sizes[1]!]);
      expect(result.list).toEqual([`1 ${sizes[0]}`, `2 ${sizes[1]}`]);
      expect(result.uidl).toHaveLength(2);
      expect(result.messages).toEqual(MESSAGES);
      expect(result.top).toEqual(['From: a@example.org', 'To: b@example.com', 'Subject: first', '']);
      expect(result.quit).toBe('+OK ');
      expect(await curMessages(user)).toBe(1);
    });
  }

  it('curl reads the list and a message over pop3:// (SASL), pop3:// with STLS, and pop3s://', async () => {
    const { login, user } = await freshUser();
    const auth = ['-u', `${login}:pw ${n}`];
    const list = await run('curl', ['-sS', '--max-time', '20', ...auth, `pop3://127.0.0.1:${pop.port}/`]);
    expect(list.stdout.trim().split(/\r?\n/)).toEqual(MESSAGES.map((m, i) => `${i + 1} ${crlfSize(m)}`));
    const plain = await run('curl', ['-sS', '--max-time', '20', ...auth, `pop3://127.0.0.1:${pop.port}/1`]);
    expect(plain.stdout.replace(/\r\n/g, '\n')).toBe(MESSAGES[0]);
    const stls = await run('curl', ['-sS', '-k', '--ssl-reqd', '--max-time', '20', ...auth, `pop3://127.0.0.1:${pop.port}/2`]);
    expect(stls.stdout.replace(/\r\n/g, '\n')).toBe(MESSAGES[1]);
    const secure = await run('curl', ['-sS', '-k', '--max-time', '20', ...auth, `pop3s://127.0.0.1:${pop.securePort}/1`]);
    expect(secure.stdout.replace(/\r\n/g, '\n')).toBe(MESSAGES[0]);
    const uidl = await run('curl', ['-sS', '-k', '--max-time', '20', ...auth, '-X', 'UIDL', `pop3s://127.0.0.1:${pop.securePort}/`]);
    expect(uidl.stdout.trim().split(/\r?\n/)).toHaveLength(2);
    const refused = await run('curl', ['-sS', '--max-time', '20', '-u', `${login}:wrong`, `pop3://127.0.0.1:${pop.port}/`]).catch((err: { code: number }) => err);
    expect((refused as { code: number }).code).toBe(67);
    expect(await curMessages(user)).toBe(2);
  });

  it('fetchmail (STLS, its own choice of SASL) retrieves every message into a file through an MDA and deletes them at QUIT', async () => {
    const { login, user } = await freshUser();
    const home = await mkdtemp(join(tmpdir(), 'pop3-fetchmail-'));
    try {
      const out = join(home, 'mail.out');
      const rc = join(home, '.fetchmailrc');
      await writeFile(
        rc,
        [
          'set no bouncemail',
          `poll 127.0.0.1 with protocol POP3 and port ${pop.port} and timeout 20:`,
          `  user "${login}" there with password "pw ${n}" is "tester" here`,
          '  options no sslcertck',
          `  mda "/bin/sh -c 'cat >> ${out}; echo ==end== >> ${out}'"`,
          '',
        ].join('\n'),
      );
      await chmod(rc, 0o600);
      const fetched = await run('fetchmail', ['-v', '-f', rc, '--nosyslog'], {
        env: { ...process.env, HOME: home, FETCHMAILHOME: home },
        timeout: 30_000,
      });
      const transcript = fetched.stdout + fetched.stderr;
      expect(transcript).toContain('upgrade to TLS succeeded');
      expect(transcript).toMatch(/POP3> QUIT/);
      const delivered = (await readFile(out, 'utf8')).split('==end==\n').filter((m) => m !== '');
      expect(delivered).toHaveLength(2);
      delivered.forEach((m, i) => expect(m.endsWith(MESSAGES[i]!)).toBe(true));
      expect(await curMessages(user)).toBe(0);
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  });
});
