import { promises as dns } from 'node:dns';
import { isIP } from 'node:net';
import type { Fail, Resolver } from '@quail/core';

/** Seconds-free defaults for one query: node's resolver retries `tries` times with `timeout` each. */
const QUERY_TIMEOUT_MS = 5000;
const QUERY_TRIES = 2;

/**
 * Parses control/dnsservers: one server per line as `ip`, `ip:port` or
 * `[ipv6]:port`. Returns the strings node's resolver accepts.
 */
export function parseDnsServers(raw: string[], fail: Fail): string[] {
  return raw.map((line, i) => {
    const text = line.trim();
    if (isIP(text) !== 0) return text;
    const bracket = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(text);
    const plain = /^([^:\s]+):(\d{1,5})$/.exec(text);
    const m = bracket ?? plain;
    if (!m || isIP(m[1]!) === 0) return fail(i, `"${text.slice(0, 60)}" is not an IP address, ip:port or [ipv6]:port`);
    if (m[2] !== undefined && (Number(m[2]) < 1 || Number(m[2]) > 65535)) return fail(i, `port ${m[2]} is out of range`);
    return text;
  });
}

/**
 * The Resolver service: DNS through node's resolver, asking the servers of
 * control/dnsservers (the system's when the file is empty). The server list is
 * read on every query, so a reload takes effect at once.
 */
export class ConfiguredResolver implements Resolver {
  readonly #servers: () => readonly string[];
  #current?: { key: string; resolver: dns.Resolver };

  constructor(servers: () => readonly string[]) {
    this.#servers = servers;
  }

  #resolver(): dns.Resolver {
    const servers = this.#servers();
    const key = servers.join(' ');
    if (this.#current?.key !== key) {
      const resolver = new dns.Resolver({ timeout: QUERY_TIMEOUT_MS, tries: QUERY_TRIES });
      if (servers.length > 0) resolver.setServers([...servers]);
      this.#current = { key, resolver };
    }
    return this.#current.resolver;
  }

  resolveMx(domain: string) {
    return this.#resolver().resolveMx(domain);
  }
  resolve4(host: string) {
    return this.#resolver().resolve4(host);
  }
  resolve6(host: string) {
    return this.#resolver().resolve6(host);
  }
  resolveTxt(host: string) {
    return this.#resolver().resolveTxt(host);
  }
  reverse(ip: string) {
    return this.#resolver().reverse(ip);
  }
}
