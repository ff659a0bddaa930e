import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Tokens } from '@quail/core';
import { presetPlugins } from '@quail/qmail';
import { startTestServer, type TestServer } from '@quail/testkit';
import { JsonUserStore } from '../src/json-user-store.js';
import { hashPassword, verifyPassword } from '../src/passwords.js';
import { customPlugins } from '../src/server.js';
import { parseUserFile } from '../src/user-file.js';

const run = promisify(execFile);

/** A real POP3 client: Python's poplib. Prints one line per step; a refused login prints ERR <reply>. */
const POP3_CLIENT = `
import poplib, sys
port, user, password, delete = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4] == '1'
box = poplib.POP3('127.0.0.1', port, timeout=10)
box.user(user)
try:
    box.pass_(password)
except poplib.error_proto as e:
    print('ERR', e.args[0].decode()); sys.exit(0)
count, size = box.stat()
print('STAT', count)
for i in range(1, count + 1):
    lines = box.retr(i)[1]
    subject = [l.decode() for l in lines if l.lower().startswith(b'subject:')]
    print('MSG', subject[0] if subject else '')
    if delete: box.dele(i)
box.quit()
`;

async function pop3(kit: TestServer, user: string, password: string, remove = false): Promise<string[]> {
  const { stdout } = await run('python3', ['-c', POP3_CLIENT, String(kit.pop3Port), user, password, remove ? '1' : '0']);
  return stdout.trim().split('\n');
}

let usersJson: string;
beforeAll(async () => {
  usersJson = JSON.stringify({
    domains: {
      'example.test': {
        aliases: ['example.net'],
        users: { joe: { password: await hashPassword('joe-secret') }, max: { password: await hashPassword('max-secret'), disabled: true } },
      },
    },
  });
});

let kit: TestServer | undefined;
const start = (files: Record<string, string> = { 'users.json': usersJson }, log?: (line: string) => void) =>
  startTestServer({
    plugins: customPlugins(),
    control: {
      me: 'mx.example.test',
      rcpthosts: 'example.test\nexample.net',
      virtualdomains: 'example.test:example.test\nexample.net:example.test',
      defaultdomain: 'example.test',
      'pop3d.faildelay': '0',
      // remote mail goes to a closed loopback port: it is deferred and no DNS is asked
      smtproutes: ':127.0.0.1:9',
    },
    files,
    ...(log && { log: { level: 'warn', write: log } }),
  });

beforeEach(async () => {
  kit = await start();
});
afterEach(async () => {
  await kit?.stop();
  kit = undefined;
});

const joeMaildir = () => join(kit!.root, 'mail/example.test/joe/Maildir');

describe('the preset with vpopmail swapped for json-users', () => {
  it('runs the preset plugin list in the preset order, with json-users providing UserStore and Authenticator', async () => {
    expect(kit!.server.plugins).toEqual(presetPlugins().map((p) => (p.name === 'vpopmail' ? 'json-users' : p.name)));
    expect(kit!.server.resolve(Tokens.UserStore)).toBeInstanceOf(JsonUserStore);
    // the kernel puts the Authenticator behind its login throttle; the checks are json-users'
    const auth = kit!.server.resolve(Tokens.Authenticator);
    expect(auth.mechanisms()).toEqual((kit!.server.resolve(Tokens.UserStore) as JsonUserStore).mechanisms());
    expect(await auth.authenticate({ mechanism: 'USER', service: 'pop3', username: 'nobody@example.test', password: 'x' })).toMatchObject({ ok: false });
  });

  it('delivers SMTP mail to a JSON user, who reads and deletes it over POP3', async () => {
    await kit!.send({ from: 'ann@example.org', to: 'joe@example.test', subject: 'for joe' });
    await kit!.send({ from: 'ann@example.org', to: 'Joe-lists@example.net', subject: 'via the alias domain' });
    const stored = await kit!.waitForMessages(joeMaildir(), 2);
    expect(stored.map((m) => m.deliveredTo).sort()).toEqual(['example.test-Joe-lists@example.net', 'example.test-joe@example.test']);
    expect(await pop3(kit!, 'joe@example.test', 'joe-secret', true)).toEqual(expect.arrayContaining(['STAT 2', 'MSG Subject: for joe', 'MSG Subject: via the alias domain']));
    expect(await pop3(kit!, 'joe', 'joe-secret')).toEqual(['STAT 0']);
  });

  it('refuses wrong passwords, unknown users and disabled users at POP3 login', async () => {
    expect(await pop3(kit!, 'joe@example.test', 'wrong')).toEqual([expect.stringMatching(/^ERR -ERR .*authorization failed/)]);
    expect(await pop3(kit!, 'nobody@example.test', 'joe-secret')).toEqual([expect.stringMatching(/^ERR -ERR/)]);
    expect(await pop3(kit!, 'max@example.test', 'max-secret')).toEqual([expect.stringMatching(/^ERR -ERR/)]);
  });

  it('refuses unknown users of its domains at RCPT, as vpopmail does', async () => {
    const smtp = await kit!.dialog();
    await smtp.command('HELO client.example.org');
    await smtp.command('MAIL FROM:<ann@example.org>');
    expect((await smtp.command('RCPT TO:<nobody@example.test>')).text).toBe('550 sorry, no mailbox here by that name. (#5.1.1)');
    expect((await smtp.command('RCPT TO:<joe-anything@example.test>')).code).toBe(250);
    await smtp.close();
  });

  it('lets JSON users relay after SMTP AUTH', async () => {
    await expect(kit!.send({ from: 'joe@example.test', to: 'x@far.example', localAddress: '127.0.1.3' })).rejects.toMatchObject({ responseCode: 553 });
    const info = await kit!.send({ from: 'joe@example.test', to: 'x@far.example', auth: { user: 'joe@example.test', pass: 'joe-secret' } });
    expect(info.accepted).toEqual(['x@far.example']);
  });

  it('picks up users added to the file without a reload', async () => {
    const next = JSON.parse(usersJson);
    next.domains['example.test'].users.sue = { password: await hashPassword('sue-secret') };
    await writeFile(join(kit!.root, 'users.json'), JSON.stringify(next));
    await kit!.send({ from: 'ann@example.org', to: 'sue@example.test', subject: 'welcome' });
    await kit!.waitForMessages(join(kit!.root, 'mail/example.test/sue/Maildir'));
    expect(await pop3(kit!, 'sue@example.test', 'sue-secret')).toEqual(['STAT 1', 'MSG Subject: welcome']);
  });

  it('keeps the last good users when the file breaks, and says which file', async () => {
    await kit!.stop();
    const lines: string[] = [];
    kit = await start({ 'users.json': usersJson }, (line) => lines.push(line));
    await writeFile(join(kit.root, 'users.json'), '{"domains": {"example.test": {"users": {"../x": {}}}}}');
    expect(await pop3(kit, 'joe@example.test', 'joe-secret')).toEqual(['STAT 0']);
    expect(lines.join('\n')).toContain(`${join(kit.root, 'users.json')}: domains.example.test.users.../x: user names are letters`);
  });

  it('does not start with a broken users file', async () => {
    await expect(start({ 'users.json': '{"domains": [' })).rejects.toThrow(/users\.json: not JSON/);
  });
});

describe('users.json checks', () => {
  it('names the entry at fault', () => {
    const bad: Array<[unknown, RegExp]> = [
      [[], /\(top\): must be an object/],
      [{ domains: { 'bad domain': {} } }, /domains\.bad domain: is not a domain name/],
      [{ domains: { 'a.test': { users: { joe: { password: 'plain' } } } } }, /domains\.a\.test\.users\.joe\.password: must be a scrypt/],
      [{ domains: { 'a.test': { users: { 'jo/e': {} } } } }, /users\.jo\/e: user names/],
      [{ domains: { 'a.test': {}, 'b.test': { aliases: ['a.test'] } } }, /a\.test is named twice/],
    ];
    for (const [data, message] of bad) expect(() => parseUserFile(JSON.stringify(data), 'users.json')).toThrow(message);
  });

  it('hashes with scrypt and verifies in constant time', async () => {
    const hash = await hashPassword('pw');
    expect(hash).toMatch(/^scrypt\$16384\$/);
    expect(await verifyPassword('pw', hash)).toBe(true);
    expect(await verifyPassword('pW', hash)).toBe(false);
    expect(await verifyPassword('pw', 'scrypt$3$AAAAAAAAAAA=$AAAAAAAAAAAAAAAAAAAAAA==')).toBe(false);
  });
});
