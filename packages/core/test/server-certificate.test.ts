import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, definePlugin, parseServerCertificate, qmailFiles } from '@quail/core';
import { tempRoot } from '@quail/core/testing';

const fail = (_at: number | string, reason: string): never => {
  throw new Error(reason);
};

let dir: { root: string; cleanup: () => Promise<void> };
let key: string;
let cert: string;
let otherKey: string;

/** A key and a self-signed certificate made by openssl for this test, and a second, unrelated key. */
beforeAll(async () => {
  dir = await tempRoot();
  const make = (name: string) => {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-days', '1', '-keyout', join(dir.root, `${name}.key`), '-out', join(dir.root, `${name}.crt`)], { stdio: 'ignore' });
    return [readFileSync(join(dir.root, `${name}.key`), 'utf8'), readFileSync(join(dir.root, `${name}.crt`), 'utf8')] as const;
  };
  [key, cert] = make('one');
  [otherKey] = make('two');
});
afterAll(() => dir.cleanup());

describe('servercert.pem', () => {
  it('splits the file into its key and certificate chain, in either order', () => {
    for (const pem of [`${key}${cert}`, `${cert}\n${key}`]) {
      const parsed = parseServerCertificate(pem, fail)!;
      expect(parsed.key).toBe(key.trim());
      expect(parsed.cert).toBe(cert.trim());
    }
  });

  it('means no TLS when absent or empty', () => {
    expect(parseServerCertificate(undefined, fail)).toBeUndefined();
    expect(parseServerCertificate('\n \n', fail)).toBeUndefined();
  });

  it('refuses a file without a key, with two keys, without a certificate, or whose key does not match', () => {
    expect(() => parseServerCertificate(cert, fail)).toThrow('expected one private key, found 0');
    expect(() => parseServerCertificate(`${key}${otherKey}${cert}`, fail)).toThrow('expected one private key, found 2');
    expect(() => parseServerCertificate(key, fail)).toThrow('no certificate found');
    expect(() => parseServerCertificate(`${otherKey}${cert}`, fail)).toThrow(/^key and certificate are not usable: /);
    expect(() => parseServerCertificate('-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n' + cert, fail)).toThrow(
      /^key and certificate are not usable: /,
    );
  });

  it('stops a server from starting with a broken file, naming it', async () => {
    const root = await tempRoot({ 'servercert.pem': cert });
    const server = createServer({
      root: root.root,
      plugins: [definePlugin({ name: 'tls-user', version: '0.0.0', control: { 'servercert.pem': qmailFiles['servercert.pem'] }, register: () => undefined })],
      log: { level: 'silent' },
    });
    try {
      await expect(server.start()).rejects.toThrow('control/servercert.pem:1: expected one private key, found 0');
    } finally {
      await root.cleanup();
    }
  });
});
