import { isIP } from 'node:net';
import { domainSuffixes } from '@quail/core';

/** Credentials for SMTP AUTH to a smarthost. */
export interface RouteCredentials {
  user: string;
  password: string;
}

/** One `control/smtproutes` entry after parsing. */
export interface SmtpRoute {
  /** The key that matched (`example.com`, `.example.com` or `` for the default route). */
  key: string;
  /** The relay host name or IP address; undefined for an empty relay (use the MX records). */
  relay?: string;
  port?: number;
  credentials?: RouteCredentials;
}

export type RouteLookup = { kind: 'route'; route: SmtpRoute } | { kind: 'invalid'; key: string; reason: string } | { kind: 'none' };

/**
 * Parses the value of one smtproutes line (what follows `domain:`):
 * `relay[:port][ user password]`. The relay may be a host name, an IPv4
 * address, or an address in brackets (`[192.0.2.1]`, `[2001:db8::1]:2525`).
 * Credentials follow the first blank, as in the qmail-remote AUTH patches:
 * the user name is the first word, the password the rest of the line.
 */
export function parseRouteValue(key: string, value: string): SmtpRoute {
  const text = value.trim();
  const blank = text.search(/\s/);
  const target = blank < 0 ? text : text.slice(0, blank);
  const auth = blank < 0 ? '' : text.slice(blank).trim();
  const route: SmtpRoute = { key };
  let rest = target;
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']');
    if (close < 0) throw new Error(`unclosed [ in relay "${clip(target)}"`);
    const ip = rest.slice(1, close);
    if (isIP(ip) === 0) throw new Error(`"${clip(ip)}" in brackets is not an IP address`);
    route.relay = ip;
    rest = rest.slice(close + 1);
    if (rest !== '' && !rest.startsWith(':')) throw new Error(`unexpected "${clip(rest)}" after the bracketed address`);
    rest = rest.slice(1);
  } else {
    const colon = rest.indexOf(':');
    const host = colon < 0 ? rest : rest.slice(0, colon);
    rest = colon < 0 ? '' : rest.slice(colon + 1);
    if (host !== '') {
      if (isIP(host) === 0 && !/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*\.?$/i.test(host)) {
        throw new Error(`"${clip(host)}" is neither a host name nor an IP address`);
      }
      route.relay = host.replace(/\.$/, '').toLowerCase();
    }
  }
  if (rest !== '') {
    if (!/^\d{1,5}$/.test(rest) || Number(rest) < 1 || Number(rest) > 65535) throw new Error(`port "${clip(rest)}" is not a number from 1 to 65535`);
    route.port = Number(rest);
  }
  if (auth !== '') {
    if (route.relay === undefined) throw new Error('credentials need a relay: an empty relay means the MX records are used');
    const space = auth.search(/\s/);
    if (space < 0) throw new Error('credentials need a user name and a password separated by a blank');
    route.credentials = { user: auth.slice(0, space), password: auth.slice(space).trim() };
  } else if (route.relay === undefined && route.port !== undefined) {
    throw new Error('a port needs a relay');
  }
  return route;
}

/** control/smtproutes: qmail's artificial routes, with optional smarthost credentials. */
export class SmtpRoutes {
  readonly #routes = new Map<string, SmtpRoute>();
  readonly #invalid = new Map<string, string>();

  constructor(entries: Readonly<Record<string, string>>) {
    for (const [key, value] of Object.entries(entries)) {
      try {
        this.#routes.set(key, parseRouteValue(key, value));
      } catch (err) {
        this.#invalid.set(key, (err as Error).message);
      }
    }
  }

  /** Problems found, as `control/smtproutes` reports them (for the log). */
  get problems(): string[] {
    return [...this.#invalid].map(([key, reason]) => `control/smtproutes: entry "${key}": ${reason}`);
  }

  /** qmail's lookup: the domain, then each `.suffix`, then the empty default key. */
  lookup(domain: string): RouteLookup {
    const keys = domain === '' ? [''] : [...domainSuffixes(domain), ''];
    for (const key of keys) {
      const invalid = this.#invalid.get(key);
      if (invalid !== undefined) return { kind: 'invalid', key, reason: `entry "${key}": ${invalid}` };
      const route = this.#routes.get(key);
      if (route) return { kind: 'route', route };
    }
    return { kind: 'none' };
  }
}

function clip(text: string): string {
  return text.length > 60 ? `${text.slice(0, 60)}...` : text;
}
