import { execFile } from 'node:child_process';
import { chmod, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Daemon, killAll, makeRoot } from './support/daemon.js';
import { recordMetrics } from './support/metrics.js';

let daemon: Daemon;
let root: string;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  ({ root, cleanup } = await makeRoot());
  daemon = await Daemon.start(root);
}, 60_000);

afterAll(async () => {
  await daemon?.stop();
  await killAll();
  await cleanup?.();
});

/** One `openssl s_client` handshake; true when a session with a cipher was established. */
async function handshake(port: number, starttls: 'smtp' | 'pop3', args: string[]): Promise<{ ok: boolean; protocol?: string; cipher?: string }> {
  const child = execFile('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-starttls', starttls, '-servername', 'localhost', ...args], { timeout: 15_000 });
  // end of input: s_client quits right after the handshake
  child.stdin!.end();
  let result = '';
  child.stdout!.on('data', (c: Buffer) => (result += c.toString()));
  await new Promise<void>((resolve) => child.once('close', () => resolve()));
  const cipher = /Cipher is (\S+)/.exec(result)?.[1];
  const protocol = /Protocol\s*:\s*(\S+)/.exec(result)?.[1] ?? /New, (TLSv[\d.]+)/.exec(result)?.[1];
  return { ok: cipher !== undefined && cipher !== '(NONE)', ...(protocol && { protocol }), ...(cipher && { cipher }) };
}

/** Cipher families that must never be negotiated. */
const WEAK = ['NULL', 'aNULL', 'eNULL', 'EXPORT', 'RC4', 'DES', '3DES', 'MD5', 'IDEA', 'SEED', 'PSK', 'CAMELLIA128', 'kRSA', 'SHA1'];

describe('TLS on SMTP (STARTTLS) and POP3 (STLS)', () => {
  const services = () =>
    [
      ['smtp', daemon.ports!.smtp],
      ['pop3', daemon.ports!.pop3],
    ] as const;

  it('refuses TLS 1.0 and 1.1 and accepts 1.2 and 1.3', async () => {
    const figures: Record<string, unknown> = {};
    for (const [service, port] of services()) {
      figures[service] = {
        tls10: (await handshake(port, service, ['-tls1', '-cipher', 'ALL:@SECLEVEL=0'])).ok,
        tls11: (await handshake(port, service, ['-tls1_1', '-cipher', 'ALL:@SECLEVEL=0'])).ok,
        tls12: (await handshake(port, service, ['-tls1_2'])).cipher,
        tls13: (await handshake(port, service, ['-tls1_3'])).cipher,
      };
    }
    await recordMetrics('tls-versions', figures);
    for (const [service] of services()) {
      expect(figures[service]).toMatchObject({ tls10: false, tls11: false, tls12: expect.stringMatching(/^[A-Z0-9-]+$/), tls13: expect.stringMatching(/^TLS_/) });
    }
  }, 120_000);

  it('negotiates no weak cipher (no NULL/export/RC4/DES/MD5, no static-RSA key exchange, no SHA-1 CBC suites)', async () => {
    const accepted: Record<string, string[]> = {};
    for (const [service, port] of services()) {
      accepted[service] = [];
      for (const family of WEAK) {
        const r = await handshake(port, service, ['-tls1_2', '-cipher', `${family}:@SECLEVEL=0`]);
        if (r.ok) accepted[service].push(`${family}: ${r.cipher}`);
      }
    }
    await recordMetrics('tls-ciphers', { weakAccepted: accepted });
    expect(accepted).toEqual({ smtp: [], pop3: [] });
  }, 120_000);
});

describe('file permissions', () => {
  it('servercert.pem and the control socket are owner-only', async () => {
    const cert = await stat(join(root, 'control', 'servercert.pem'));
    const socket = await stat(join(root, 'quail.sock'));
    expect(cert.mode & 0o077).toBe(0);
    expect(socket.isSocket()).toBe(true);
    expect(socket.mode & 0o077).toBe(0);
  });

  it('the daemon refuses to start when control/ is world-writable', async () => {
    const other = await makeRoot();
    try {
      await chmod(join(other.root, 'control'), 0o777);
      let refused: Error | undefined;
      try {
        const started = await Daemon.start(other.root, { startTimeoutMs: 20_000 });
        await started.stop();
      } catch (err) {
        refused = err as Error;
      }
      expect(refused, 'quail start served with a world-writable control/').toBeDefined();
      expect(refused!.message).toMatch(/exited \(\d+\)[\s\S]*control/);
    } finally {
      await other.cleanup();
    }
  }, 60_000);
});
