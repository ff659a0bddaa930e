import { createSecureContext, type SecureContext } from 'node:tls';
import { ErrorCodes, QuailError, TLS_SERVER_OPTIONS, type Fail } from '@quail/core';

/** Key and certificate chain from control/servercert.pem (the same shape plugin-smtpd reads). */
export interface ServerCertificate {
  key: string;
  cert: string;
}

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]+?-----END \1-----/g;

/**
 * Splits qmail's servercert.pem (private key and certificate chain in one PEM
 * file) into key and chain; `fail` reports what is missing.
 */
export function parseServerCertificate(pem: string, fail: Fail): ServerCertificate | undefined {
  // An absent file reaches the parser as undefined: no certificate, no TLS.
  if (pem === undefined || pem.trim() === '') return undefined;
  const keys: string[] = [];
  const certs: string[] = [];
  for (const match of pem.matchAll(BLOCK)) {
    if (match[1]!.endsWith('PRIVATE KEY')) keys.push(match[0]);
    else if (match[1] === 'CERTIFICATE') certs.push(match[0]);
  }
  if (keys.length !== 1) fail(0, `expected one private key, found ${keys.length}`);
  if (certs.length === 0) fail(0, 'no certificate found');
  return { key: keys[0]!, cert: certs.join('\n') };
}

/** The TLS context for STLS and POP3S: core's TLS policy (TLS 1.2 or newer, forward-secret AEAD ciphers). */
export function secureContextFor(certificate: ServerCertificate): SecureContext {
  try {
    return createSecureContext({ key: certificate.key, cert: certificate.cert, ...TLS_SERVER_OPTIONS });
  } catch (err) {
    throw new QuailError(ErrorCodes.CONFIG, `control/servercert.pem: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * The certificate out of the control snapshot. Another plugin declaring the same
 * file may have parsed it first, so both the raw PEM text and `{ key, cert }` are accepted.
 */
export function certificateFromControl(value: unknown): ServerCertificate | undefined {
  if (typeof value === 'string') {
    return parseServerCertificate(value, (_at, reason) => {
      throw new QuailError(ErrorCodes.CONFIG, `control/servercert.pem: ${reason}`);
    });
  }
  if (value && typeof value === 'object') {
    const { key, cert } = value as Partial<ServerCertificate>;
    if (typeof key === 'string' && typeof cert === 'string') return { key, cert };
  }
  return undefined;
}
