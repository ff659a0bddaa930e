import { createSecureContext, type SecureContext } from 'node:tls';
import { ErrorCodes, QuailError, TLS_SERVER_OPTIONS, type ServerCertificate } from '@quail/core';

/** The TLS context for STLS and POP3S: core's TLS policy (TLS 1.2 or newer, forward-secret AEAD ciphers). */
export function secureContextFor(certificate: ServerCertificate): SecureContext {
  try {
    return createSecureContext({ key: certificate.key, cert: certificate.cert, ...TLS_SERVER_OPTIONS });
  } catch (err) {
    throw new QuailError(ErrorCodes.CONFIG, `control/servercert.pem: ${(err as Error).message}`, { cause: err });
  }
}
