import { networkInterfaces } from 'node:os';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { DeliveryResult } from '@quail/core';
import { makeCertificate, startDns, startPeer, startQuail, tempDir, type Fixture, type Peer } from './helpers.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

let certs: { dir: string; cleanup: () => Promise<void> };
let mx: { key: string; cert: string; certFile: string };
let dnsAddress: string;
let closeDns: () => Promise<void>;

beforeAll(async () => {
  certs = await tempDir();
  mx = await makeCertificate(certs.dir, ['mx.tls.test']);
  const zone = await startDns({ 'mx.tls.test': { a: ['127.0.0.1'] }, 'other.tls.test': { a: ['127.0.0.1'] } });
  dnsAddress = zone.address;
  closeDns = zone.close;
});
afterAll(async () => {
  await closeDns();
  await certs.cleanup();
});

async function quail(files: Record<string, string>): Promise<Fixture> {
  const q = await startQuail({ dnsservers: `${dnsAddress}\n`, ...files });
  cleanups.push(q.stop);
  return q;
}

async function peer(options: Parameters<typeof startPeer>[0] = {}): Promise<Peer> {
  const p = await startPeer(options);
  cleanups.push(p.close);
  return p;
}

const tlsPeer = (extra: Parameters<typeof startPeer>[0] = {}) => peer({ key: mx.key, cert: mx.cert, ...extra });

describe('STARTTLS', () => {
  it('is used whenever offered (may, the default), without checking the certificate', async () => {
    const sink = await tlsPeer();
    const q = await quail({ smtproutes: `tls.test:mx.tls.test:${sink.port}\n` });
    const [result] = (await q.deliver(['x@tls.test'])) as DeliveryResult[];
    expect(result!.kind).toBe('success');
    expect(sink.messages[0]!.secure).toBe(true);
  });

  it('verify: delivers when the certificate is valid for the relay name under the given CA', async () => {
    const sink = await tlsPeer();
    const q = await quail({ smtproutes: `tls.test:mx.tls.test:${sink.port}\n`, tlsdestinations: `tls.test:verify:${mx.certFile}\n` });
    const [result] = (await q.deliver(['x@tls.test'])) as DeliveryResult[];
    expect(result!.kind).toBe('success');
    expect(sink.messages[0]!.secure).toBe(true);
  });

  it('verify: defers when the certificate is not trusted', async () => {
    const sink = await tlsPeer();
    const q = await quail({ smtproutes: `tls.test:mx.tls.test:${sink.port}\n`, tlsdestinations: '.test:verify\n' });
    const [result] = (await q.deliver(['x@tls.test'])) as DeliveryResult[];
    expect(result!.kind).toBe('deferral');
    expect(result!.text).toMatch(/^Connected to 127\.0\.0\.1 but the TLS negotiation failed: .*certificate.* \(#4\.7\.5\)$/i);
    expect(sink.messages).toHaveLength(0);
  });

  it('verify: defers when the certificate names another host', async () => {
    const sink = await tlsPeer();
    const q = await quail({ smtproutes: `tls.test:other.tls.test:${sink.port}\n`, tlsdestinations: `:verify:${mx.certFile}\n` });
    const [result] = (await q.deliver(['x@tls.test'])) as DeliveryResult[];
    expect(result!.kind).toBe('deferral');
    expect(result!.text).toContain("other.tls.test");
    expect(sink.messages).toHaveLength(0);
  });

  it('encrypt: defers when the peer does not offer STARTTLS', async () => {
    const sink = await peer();
    const q = await quail({ smtproutes: `tls.test:127.0.0.1:${sink.port}\n`, tlsdestinations: 'tls.test:encrypt\n' });
    const [result] = (await q.deliver(['x@tls.test'])) as DeliveryResult[];
    expect(result!.kind).toBe('deferral');
    expect(result!.text).toMatch(/^Connected to 127\.0\.0\.1 but it does not offer STARTTLS, which control\/tlsdestinations requires\. \(#4\.7\.4\)/);
    expect(sink.mails).toBe(0);
  });

  it('none: stays in plain text even when STARTTLS is offered', async () => {
    const sink = await tlsPeer();
    const q = await quail({ smtproutes: `tls.test:127.0.0.1:${sink.port}\n`, tlsdestinations: 'tls.test:none\n' });
    const [result] = (await q.deliver(['x@tls.test'])) as DeliveryResult[];
    expect(result!.kind).toBe('success');
    expect(sink.messages[0]!.secure).toBe(false);
  });
});

describe('SMTP AUTH to a smarthost (credentials in smtproutes)', () => {
  const authScript = {
    onAuth(auth: { username?: string; password?: string }, _session: unknown, cb: (err: Error | null, res?: { user: string }) => void) {
      if (auth.username === 'relayuser' && auth.password === 'pass word:1') cb(null, { user: 'relayuser' });
      else cb(Object.assign(new Error('Authentication failed'), { responseCode: 535 }));
    },
  };

  it('authenticates in plain text to a loopback smarthost and relays', async () => {
    const sink = await peer({ authOptional: false, allowInsecureAuth: true, authMethods: ['PLAIN', 'LOGIN'], script: { onAuth: authScript.onAuth as never } });
    const q = await quail({ smtproutes: `:127.0.0.1:${sink.port} relayuser pass word:1\n` });
    const [result] = (await q.deliver(['x@anywhere.test'])) as DeliveryResult[];
    expect(result!.kind).toBe('success');
    expect(sink.messages[0]!.user).toBe('relayuser');
  });

  it('authenticates after STARTTLS when the smarthost wants TLS first', async () => {
    const sink = await tlsPeer({ authOptional: false, authMethods: ['LOGIN'], script: { onAuth: authScript.onAuth as never } });
    const q = await quail({ smtproutes: `:mx.tls.test:${sink.port} relayuser pass word:1\n` });
    const [result] = (await q.deliver(['x@anywhere.test'])) as DeliveryResult[];
    expect(result!.kind).toBe('success');
    expect(sink.messages[0]).toMatchObject({ user: 'relayuser', secure: true });
  });

  it('defers when the smarthost rejects the credentials', async () => {
    const sink = await peer({ authOptional: false, allowInsecureAuth: true, script: { onAuth: authScript.onAuth as never } });
    const q = await quail({ smtproutes: `:127.0.0.1:${sink.port} relayuser wrong\n` });
    const [result] = (await q.deliver(['x@anywhere.test'])) as DeliveryResult[];
    expect(result).toEqual({ kind: 'deferral', text: 'Connected to 127.0.0.1 but my authentication was rejected.\nRemote host said: 535 Authentication failed' });
    expect(sink.mails).toBe(0);
  });

  it('defers when the smarthost does not offer AUTH', async () => {
    const sink = await peer({ disabledCommands: ['STARTTLS', 'AUTH'] });
    const q = await quail({ smtproutes: `:127.0.0.1:${sink.port} relayuser secret\n` });
    const [result] = (await q.deliver(['x@anywhere.test'])) as DeliveryResult[];
    expect(result).toEqual({ kind: 'deferral', text: 'Connected to 127.0.0.1 but it does not offer SMTP AUTH, which control/smtproutes gives credentials for. (#4.7.0)' });
  });

  // An address of this host that is not loopback (traffic to it still never leaves the host).
  const ownAddress = Object.values(networkInterfaces())
    .flat()
    .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;

  it.skipIf(!ownAddress)('does not send credentials in plain text to a host that is not on loopback', async () => {
    const sink = await peer({ host: ownAddress!, authOptional: false, allowInsecureAuth: true, script: { onAuth: authScript.onAuth as never } });
    const q = await quail({ smtproutes: `:${ownAddress}:${sink.port} relayuser pass word:1\n` });
    const [result] = (await q.deliver(['x@anywhere.test'])) as DeliveryResult[];
    expect(result).toEqual({ kind: 'deferral', text: `Not sending the control/smtproutes credentials to ${ownAddress} without TLS. (#4.7.0)` });
    expect(sink.mails).toBe(0);
  });

  it.skipIf(!ownAddress)('sends them to that host once STARTTLS is up', async () => {
    const sink = await tlsPeer({ host: ownAddress!, authOptional: false, script: { onAuth: authScript.onAuth as never } });
    const q = await quail({ smtproutes: `:${ownAddress}:${sink.port} relayuser pass word:1\n` });
    const [result] = (await q.deliver(['x@anywhere.test'])) as DeliveryResult[];
    expect(result!.kind).toBe('success');
    expect(sink.messages[0]).toMatchObject({ user: 'relayuser', secure: true });
  });

  it('does not reuse a connection across different credentials', async () => {
    const sink = await peer({ authOptional: false, allowInsecureAuth: true, script: { onAuth: (a, _s, cb) => cb(null, { user: a.username! }) } });
    const q = await quail({ smtproutes: `one.test:127.0.0.1:${sink.port} userone secret\ntwo.test:127.0.0.1:${sink.port} usertwo secret\n` });
    await q.deliver(['x@one.test']);
    await q.deliver(['x@two.test']);
    await q.deliver(['y@one.test']);
    expect(sink.messages.map((m) => m.user)).toEqual(['userone', 'usertwo', 'userone']);
    expect(sink.connections).toBe(2);
  });
});
