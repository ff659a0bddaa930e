import { createSecureContext, type SecureContextOptions } from 'node:tls';
import type { Fail } from './control/spec.js';

/**
 * TLS settings for every listener quail runs: TLS 1.2 and later, and for TLS 1.2
 * only forward-secret key exchange (ECDHE, DHE) with AEAD ciphers. TLS 1.3's
 * suites are all of that kind and stay as OpenSSL orders them.
 */
export const TLS_SERVER_OPTIONS = Object.freeze({
  minVersion: 'TLSv1.2',
  ciphers: [
    'ECDHE-ECDSA-AES128-GCM-SHA256',
    'ECDHE-RSA-AES128-GCM-SHA256',
    'ECDHE-ECDSA-AES256-GCM-SHA384',
    'ECDHE-RSA-AES256-GCM-SHA384',
    'ECDHE-ECDSA-CHACHA20-POLY1305',
    'ECDHE-RSA-CHACHA20-POLY1305',
    'DHE-RSA-AES128-GCM-SHA256',
    'DHE-RSA-AES256-GCM-SHA384',
  ].join(':'),
  honorCipherOrder: true,
} satisfies SecureContextOptions);

/** The private key and certificate chain of control/servercert.pem. */
export interface ServerCertificate {
  key: string;
  cert: string;
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]+?-----END \1-----/g;

/**
 * Reads qmail's servercert.pem: one private key and the certificate chain in
 * one PEM file, checked to belong together under quail's TLS settings.
 * Undefined for an absent or empty file (no TLS).
 */
export function parseServerCertificate(pem: string | undefined, fail: Fail): ServerCertificate | undefined {
  if (pem === undefined || pem.trim() === '') return undefined;
  const keys: string[] = [];
  const certs: string[] = [];
  for (const match of pem.matchAll(PEM_BLOCK)) {
    if (match[1]!.endsWith('PRIVATE KEY')) keys.push(match[0]);
    else if (match[1] === 'CERTIFICATE') certs.push(match[0]);
  }
  if (keys.length !== 1) fail(0, `expected one private key, found ${keys.length}`);
  if (certs.length === 0) fail(0, 'no certificate found');
  const certificate = { key: keys[0]!, cert: certs.join('\n') };
  try {
    createSecureContext({ ...certificate, ...TLS_SERVER_OPTIONS });
  } catch (err) {
    fail(0, `key and certificate are not usable: ${(err as Error).message}`);
  }
  return certificate;
}
