import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { defer, definePlugin, type MailUser } from '@quail/core';
import { afterEach, describe, expect, it } from 'vitest';
import { LOCK_FILE, Pop3ListenersToken } from '../src/index.js';
import { login, RawClient, run, sampleMessage, startPop3, type Pop3Fixture } from './helpers.js';

async function cur(user: MailUser): Promise<string[]> {
  return (await readdir(join(user.maildir, 'cur'))).sort();
}

/** A pid that is certainly not running: a child that has exited. */
async function deadPid(): Promise<number> {
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
  await new Promise((resolve) => child.once('exit', resolve));
  return child.pid!;
}

describe('POP3 over sockets', () => {
  let pop: Pop3Fixture;
  afterEach(() => pop?.cleanup());

  it('answers pipelined commands in order, and takes bare LF line ends', async () => {
    pop = await startPop3();
    const user = await pop.addUser('joe', 'secret');
    await pop.deliver(user, sampleMessage('piped'));
    const client = await RawClient.connect(pop.port);
    await client.line();
    client.write('USER joe\r\nPASS secret\nSTAT\r\nLIST\r\nUIDL 1\r\nNOOP\r\n');
    expect(await client.line()).toBe('+OK ');
    expect(await client.line()).toBe('+OK ');
    expect(await client.line()).toMatch(/^\+OK 1 \d+$/);
    expect(await client.line()).toBe('+OK ');
    expect(await client.body()).toHaveLength(1);
    expect(await client.line()).toMatch(/^\+OK 1 \S+$/);
    expect(await client.line()).toBe('+OK ');
    expect(await client.command('QUIT')).toBe('+OK ');
  });

  it('survives hostile input: a 10 MB line, NUL bytes, binary junk, then still serves', async () => {
    pop = await startPop3();
    const user = await pop.addUser('joe', 'secret');
    await pop.deliver(user, sampleMessage('hostile'));
    const client = await RawClient.connect(pop.port);
    await client.line();
    client.write(Buffer.alloc(10 * 1024 * 1024, 0x58));
    client.write('\r\n');
    expect(await client.line()).toBe('-ERR line too long');
    expect(await client.command('USER jo\0e')).toBe('-ERR NUL byte in command');
    expect(await client.command('\x16\x03\x01\x02\x00')).toBe('-ERR NUL byte in command');
    expect(await client.command('USER joe')).toBe('+OK ');
    expect(await client.command('PASS secret')).toBe('+OK ');
    expect(await client.command('RETR 1')).toMatch(/^\+OK \d+ octets$/);
    expect((await client.body()).join('\n')).toContain('Subject: hostile');
    expect(await client.command('QUIT')).toBe('+OK ');
    expect(await cur(user)).toHaveLength(1);
  });

  it('upgrades with STLS, ignores plain-text input sent behind STLS, and refuses STLS twice', async () => {
    pop = await startPop3({ tls: true });
    const user = await pop.addUser('joe', 'secret');
    await pop.deliver(user, sampleMessage('tls'));
    const client = await RawClient.connect(pop.port);
    await client.line();
    expect(await client.command('CAPA')).toBe('+OK Capability list follows');
    expect(await client.body()).toContain('STLS');
    client.write('STLS\r\nUSER injected\r\n');
    expect(await client.line()).toBe('+OK Begin TLS negotiation');
    await client.upgrade();
    expect(await client.command('PASS secret')).toBe('-ERR USER first');
    expect(await client.command('STLS')).toBe('-ERR Command not permitted when TLS active');
    expect(await client.command('CAPA')).toBe('+OK Capability list follows');
    expect(await client.body()).not.toContain('STLS');
    expect(await client.command('USER joe')).toBe('+OK ');
    expect(await client.command('PASS secret')).toBe('+OK ');
    expect(await client.command('STAT')).toMatch(/^\+OK 1 /);
    expect(await client.command('QUIT')).toBe('+OK ');
  });

  it('serves POP3S with TLS 1.2 or newer, and drops a client that does not speak TLS', async () => {
    pop = await startPop3({ tls: true });
    const user = await pop.addUser('joe', 'secret');
    await pop.deliver(user, sampleMessage('pop3s'));
    const client = await RawClient.connect(pop.securePort, { tls: true });
    expect(['TLSv1.2', 'TLSv1.3']).toContain((client.socket as TLSSocket).getProtocol());
    await login(client, 'joe', 'secret');
    expect(await client.command('CAPA')).toBe('+OK Capability list follows');
    expect(await client.command('QUIT')).toBeDefined();
    const plain = await RawClient.connect(pop.securePort);
    plain.write('USER joe\r\n');
    await plain.closedByServer();
    expect(Buffer.concat(plain.received).toString('latin1')).not.toContain('+OK');
  });

  it('a client vanishing mid-RETR loses nothing, and the mailbox is free again', async () => {
    pop = await startPop3();
    const user = await pop.addUser('joe', 'secret');
    const big = `Subject: big\n\n${'.x'.repeat(40)}\n`.repeat(200_000);
    await pop.deliver(user, big);
    await pop.deliver(user, sampleMessage('small'));
    const client = await RawClient.connect(pop.port);
    await login(client, 'joe', 'secret');
    expect(await client.command('DELE 2')).toBe('+OK ');
    expect(await client.command('RETR 1')).toMatch(/^\+OK \d+ octets$/);
    client.destroy();
    const next = await RawClient.connect(pop.port);
    await next.line();
    await next.command('USER joe');
    let answer = await next.command('PASS secret');
    for (let i = 0; i < 50 && answer?.includes('IN-USE'); i++) {
      const retry = await RawClient.connect(pop.port);
      await retry.line();
      await retry.command('USER joe');
      answer = await retry.command('PASS secret');
    }
    expect(answer).toBe('+OK ');
    expect(await cur(user)).toHaveLength(2);
  });

  it('gives a second connection -ERR [IN-USE], and takes over the lock file of a crashed process', async () => {
    pop = await startPop3();
    const user = await pop.addUser('joe', 'secret');
    await writeFile(join(user.maildir, LOCK_FILE), `${await deadPid()}\n`);
    const first = await RawClient.connect(pop.port);
    await login(first, 'joe', 'secret');
    const second = await RawClient.connect(pop.port);
    await second.line();
    await second.command('USER joe');
    expect(await second.command('PASS secret')).toBe('-ERR [IN-USE] mailbox in use by another POP3 session');
    await second.closedByServer();
    expect(await first.command('QUIT')).toBe('+OK ');
    await expect(stat(join(user.maildir, LOCK_FILE))).rejects.toThrow();
  });

  it('runs the connect hook: a deferring plugin turns clients away with [SYS/TEMP]', async () => {
    const limiter = definePlugin({
      name: 'limiter',
      register(ctx) {
        ctx.hooks.connect.tapPromise(ctx.name, async (conn) => (conn.protocol === 'pop3' ? defer(421, 'too busy, come back later') : undefined));
      },
    });
    pop = await startPop3({ plugins: [limiter] });
    const client = await RawClient.connect(pop.port);
    expect(await client.line()).toBe('-ERR [SYS/TEMP] too busy, come back later');
    await client.closedByServer();
  });

  it('closes an idle connection after control/timeoutpop3d seconds without deleting anything', async () => {
    pop = await startPop3({ control: { timeoutpop3d: '1\n' } });
    const user = await pop.addUser('joe', 'secret');
    await pop.deliver(user, sampleMessage('idle'));
    const client = await RawClient.connect(pop.port);
    await login(client, 'joe', 'secret');
    expect(await client.command('DELE 1')).toBe('+OK ');
    await client.closedByServer();
    expect(await cur(user)).toHaveLength(1);
  });

  it('stop ends sessions with -ERR and deletes nothing, then refuses connections', async () => {
    pop = await startPop3();
    const user = await pop.addUser('joe', 'secret');
    await pop.deliver(user, sampleMessage('stop'));
    const client = await RawClient.connect(pop.port);
    await login(client, 'joe', 'secret');
    expect(await client.command('DELE 1')).toBe('+OK ');
    await pop.server.stop();
    expect(await client.line()).toBe('-ERR [SYS/TEMP] server shutting down, nothing was deleted');
    await client.closedByServer();
    expect(await cur(user)).toHaveLength(1);
    await expect(
      new Promise((resolve, reject) => {
        const s = connect(pop.port, '127.0.0.1', () => resolve(s.destroy()));
        s.once('error', reject);
      }),
    ).rejects.toThrow(/ECONNREFUSED/);
  });

  it('picks up a new certificate on reload and keeps the old one when the new file is broken', async () => {
    pop = await startPop3({ tls: true });
    const fingerprint = async () => {
      const client = await RawClient.connect(pop.securePort, { tls: true });
      const print = (client.socket as TLSSocket).getPeerCertificate().fingerprint256;
      client.destroy();
      return print;
    };
    const before = await fingerprint();
    const key = join(pop.root, 'new-key.pem');
    const cert = join(pop.root, 'new-cert.pem');
    await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=renewed', '-days', '1', '-keyout', key, '-out', cert]);
    await writeFile(join(pop.root, 'control', 'servercert.pem'), (await readFile(key, 'utf8')) + (await readFile(cert, 'utf8')));
    expect(await pop.server.reload()).toBe(true);
    const after = await fingerprint();
    expect(after).not.toBe(before);
    await writeFile(join(pop.root, 'control', 'servercert.pem'), 'not a certificate\n');
    expect(await pop.server.reload()).toBe(false);
    expect(await fingerprint()).toBe(after);
  });

  it('stop in the middle of a RETR cuts the transfer without writing into it, and deletes nothing', async () => {
    pop = await startPop3();
    const user = await pop.addUser('joe', 'secret');
    await pop.deliver(user, `Subject: big\n\n${'y'.repeat(79)}\n`.repeat(100_000));
    await pop.deliver(user, sampleMessage('other'));
    const client = await RawClient.connect(pop.port);
    await login(client, 'joe', 'secret');
    expect(await client.command('DELE 2')).toBe('+OK ');
    client.socket.pause();
    client.write('RETR 1\r\n');
    expect(pop.server.resolve(Pop3ListenersToken).connections()).toBe(1);
    // Give the server a moment to start writing the message into the paused connection.
    await new Promise((r) => setTimeout(r, 100));
    const stopping = pop.server.stop();
    client.socket.resume();
    await stopping;
    await client.closedByServer();
    expect(Buffer.concat(client.received).toString('latin1')).not.toContain('server shutting down');
    expect(await cur(user)).toHaveLength(2);
  });

  it('refuses to start with POP3S but no certificate, or with a broken certificate file', async () => {
    await expect(startPop3({ control: { 'pop3s.listen': '127.0.0.1:0\n' } })).rejects.toThrow(
      'control/pop3s.listen: POP3S needs a certificate in control/servercert.pem',
    );
    await expect(startPop3({ control: { 'servercert.pem': 'garbage\n' } })).rejects.toThrow('control/servercert.pem:1: expected one private key, found 0');
    await expect(startPop3({ control: { 'pop3d.listen': '127.0.0.1:0\n::1:110\n' } })).rejects.toThrow(/control\/pop3d.listen:2: write IPv6 addresses in brackets/);
  });
});
