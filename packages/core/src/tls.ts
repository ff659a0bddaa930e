import type { SecureContextOptions } from 'node:tls';

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
