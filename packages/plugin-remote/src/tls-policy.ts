import { domainSuffixes, type Fail } from '@quail/core';

/**
 * How STARTTLS is used towards a destination.
 * - `none`: never (plain SMTP even when STARTTLS is offered);
 * - `may`: whenever offered, certificate not checked; a failed handshake is retried in plain text (the default);
 * - `encrypt`: TLS required, certificate not checked;
 * - `verify`: TLS required and the certificate must be valid for the MX or relay host name.
 */
export type TlsLevel = 'none' | 'may' | 'encrypt' | 'verify';

export interface TlsPolicy {
  level: TlsLevel;
  /** PEM file of trusted CAs for `verify` (the system's CAs when absent). */
  caFile?: string;
}

const LEVELS: ReadonlySet<string> = new Set(['none', 'may', 'encrypt', 'verify']);

export const DEFAULT_TLS_POLICY: TlsPolicy = Object.freeze({ level: 'may' });

/** Parses control/tlsdestinations (`domain:level[:cafile]`, `.domain` and the empty default key). */
export function parseTlsDestinations(raw: Record<string, string>, fail: Fail): Record<string, TlsPolicy> {
  const out: Record<string, TlsPolicy> = {};
  for (const [key, value] of Object.entries(raw)) {
    const colon = value.indexOf(':');
    const level = (colon < 0 ? value : value.slice(0, colon)).trim().toLowerCase();
    const caFile = colon < 0 ? '' : value.slice(colon + 1).trim();
    if (!LEVELS.has(level)) fail(key, `unknown TLS level "${level.slice(0, 40)}" (expected none, may, encrypt or verify)`);
    if (caFile !== '') {
      if (level !== 'verify') fail(key, 'a CA file is only used with the verify level');
      if (!caFile.startsWith('/')) fail(key, `the CA file must be an absolute path (got "${caFile.slice(0, 60)}")`);
    }
    out[key] = { level: level as TlsLevel, ...(caFile !== '' && { caFile }) };
  }
  return out;
}

/** The policy for a recipient domain; then for the smarthost name when a route applies; then the default key. */
export function tlsPolicyFor(table: Readonly<Record<string, TlsPolicy>>, domain: string, relay?: string): TlsPolicy {
  const candidates = [domain, ...(relay ? [relay] : [])];
  for (const name of candidates) {
    if (name === '') continue;
    for (const key of domainSuffixes(name)) {
      const hit = table[key];
      if (hit) return hit;
    }
  }
  return table[''] ?? DEFAULT_TLS_POLICY;
}
