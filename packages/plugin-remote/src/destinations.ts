import { isIP } from 'node:net';
import { deferral, failure, type DeliveryResult, type Resolver } from '@quail/core';
import type { RouteCredentials, SmtpRoutes } from './routes.js';
import { Texts } from './texts.js';

/** One address to try, in order. */
export interface Candidate {
  /** The MX or relay name (used for TLS certificate checks), or the IP itself. */
  host: string;
  ip: string;
  port: number;
  preference: number;
}

export type Destinations =
  | { kind: 'hosts'; candidates: Candidate[]; relay?: string; credentials?: RouteCredentials }
  | { kind: 'result'; result: DeliveryResult };

export interface DestinationOptions {
  resolver: Resolver;
  routes: SmtpRoutes;
  /** Port for MX and literal destinations (qmail: 25). */
  port: number;
  /** True for this host's own names (me, locals). */
  isOwnName(name: string): boolean;
  /** True for this host's own addresses. */
  isOwnIp(ip: string): boolean;
  /** Source of randomness for ordering equal preferences. */
  random?: () => number;
}

/** Exchangers looked at for one domain, and addresses tried in all (bounds the time a delivery can take). */
const MAX_EXCHANGERS = 10;
const MAX_CANDIDATES = 20;

const NOT_FOUND = new Set(['ENOTFOUND']);
const NO_DATA = new Set(['ENODATA']);

type Addresses = { kind: 'ok'; ips: string[] } | { kind: 'temporary' } | { kind: 'nxdomain' } | { kind: 'nodata' };

async function addressesOf(resolver: Resolver, host: string): Promise<Addresses> {
  const [v4, v6] = await Promise.allSettled([resolver.resolve4(host), resolver.resolve6(host)]);
  const ips = [...(v4.status === 'fulfilled' ? v4.value : []), ...(v6.status === 'fulfilled' ? v6.value : [])];
  if (ips.length > 0) return { kind: 'ok', ips };
  const codes = [v4, v6].filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => String((r.reason as NodeJS.ErrnoException)?.code));
  if (codes.some((c) => !NOT_FOUND.has(c) && !NO_DATA.has(c))) return { kind: 'temporary' };
  if (codes.some((c) => NOT_FOUND.has(c))) return { kind: 'nxdomain' };
  return { kind: 'nodata' };
}

/** `[192.0.2.1]`, `[IPv6:2001:db8::1]` or a bare dotted quad: the address itself, else undefined. */
export function addressLiteral(domain: string): string | undefined {
  const inner = /^\[(?:ipv6:)?([^\]]+)\]$/i.exec(domain)?.[1] ?? domain;
  return isIP(inner) !== 0 && (inner !== domain || isIP(inner) === 4) ? inner : undefined;
}

function bareName(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

/**
 * Where mail for `domain` goes, as qmail-remote chooses (reference 7.2):
 * smtproutes first, then an address literal, then MX records (random order among
 * equal preferences), then the domain's own addresses when it has no MX. This
 * host's own names and addresses are never chosen: only exchangers strictly better
 * than our own best entry are kept.
 */
export async function findDestinations(domain: string, options: DestinationOptions): Promise<Destinations> {
  const found = options.routes.lookup(domain);
  if (found.kind === 'invalid') return { kind: 'result', result: deferral(Texts.badRoute(found.reason)) };
  if (found.kind === 'route' && found.route.relay !== undefined) {
    const { relay, port, credentials } = found.route;
    const base = { relay, ...(credentials && { credentials }) };
    const relayPort = port ?? options.port;
    if (isIP(relay) !== 0) return { kind: 'hosts', ...base, candidates: [{ host: relay, ip: relay, port: relayPort, preference: 0 }] };
    const addresses = await addressesOf(options.resolver, relay);
    if (addresses.kind !== 'ok') return { kind: 'result', result: addressFailure(addresses, relay) };
    return { kind: 'hosts', ...base, candidates: addresses.ips.slice(0, MAX_CANDIDATES).map((ip) => ({ host: relay, ip, port: relayPort, preference: 0 })) };
  }

  const literal = addressLiteral(domain);
  if (literal !== undefined) {
    if (options.isOwnIp(literal)) return { kind: 'result', result: failure(Texts.loopsBack()) };
    return { kind: 'hosts', candidates: [{ host: literal, ip: literal, port: options.port, preference: 0 }] };
  }

  let records: Array<{ exchange: string; priority: number }>;
  try {
    records = await options.resolver.resolveMx(domain);
  } catch (err) {
    const code = String((err as NodeJS.ErrnoException)?.code);
    if (!NOT_FOUND.has(code) && !NO_DATA.has(code)) return { kind: 'result', result: deferral(Texts.dnsTemporary()) };
    records = [];
  }
  if (records.length === 0) return implicitMx(domain, options);
  const exchangers = records.filter((r) => bareName(r.exchange) !== '');
  if (exchangers.length === 0) return { kind: 'result', result: failure(Texts.nullMx(domain)) };

  const random = options.random ?? Math.random;
  const ordered = exchangers
    .map((r) => ({ name: bareName(r.exchange), preference: r.priority, tie: random() }))
    .sort((a, b) => a.preference - b.preference || a.tie - b.tie)
    .slice(0, MAX_EXCHANGERS);
  const resolved = await Promise.all(ordered.map(async (mx) => ({ ...mx, addresses: await addressesOf(options.resolver, mx.name) })));

  let ownPreference = Infinity;
  for (const mx of resolved) {
    const ownIp = mx.addresses.kind === 'ok' && mx.addresses.ips.some((ip) => options.isOwnIp(ip));
    if (options.isOwnName(mx.name) || ownIp) ownPreference = Math.min(ownPreference, mx.preference);
  }
  let temporary = false;
  const candidates: Candidate[] = [];
  for (const mx of resolved) {
    if (mx.preference >= ownPreference) continue;
    if (mx.addresses.kind === 'temporary') temporary = true;
    if (mx.addresses.kind !== 'ok') continue;
    for (const ip of mx.addresses.ips) candidates.push({ host: mx.name, ip, port: options.port, preference: mx.preference });
  }
  if (candidates.length > 0) return { kind: 'hosts', candidates: candidates.slice(0, MAX_CANDIDATES) };
  if (ownPreference !== Infinity) return { kind: 'result', result: failure(Texts.loopsBack()) };
  return { kind: 'result', result: temporary ? deferral(Texts.dnsTemporary()) : failure(Texts.dnsNothingUsable()) };
}

async function implicitMx(domain: string, options: DestinationOptions): Promise<Destinations> {
  const addresses = await addressesOf(options.resolver, domain);
  if (addresses.kind !== 'ok') return { kind: 'result', result: addressFailure(addresses, domain) };
  if (options.isOwnName(domain) || addresses.ips.some((ip) => options.isOwnIp(ip))) return { kind: 'result', result: failure(Texts.loopsBack()) };
  return { kind: 'hosts', candidates: addresses.ips.slice(0, MAX_CANDIDATES).map((ip) => ({ host: domain, ip, port: options.port, preference: 0 })) };
}

function addressFailure(addresses: Exclude<Addresses, { kind: 'ok' }>, host: string): DeliveryResult {
  switch (addresses.kind) {
    case 'temporary':
      return deferral(Texts.dnsTemporary());
    case 'nxdomain':
      return failure(Texts.dnsNoSuchHost(host));
    case 'nodata':
      return failure(Texts.dnsNothingUsable());
  }
}
