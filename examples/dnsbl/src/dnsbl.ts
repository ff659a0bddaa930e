import { isIPv4, isIPv6 } from 'node:net';
import { control, defer, deny, definePlugin, Tokens, type Connection, type Resolver, type Verdict } from '@quail/core';

/** A DNS name a list may be published under. */
const ZONE = '^(?=.{1,200}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)(\\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$';

/** What a lookup found: the zone that lists the client and the reason it publishes, if any. */
export interface Listing {
  zone: string;
  address: string;
  reason?: string;
}

/**
 * The name to look up for `ip` in `zone`: IPv4 octets reversed (192.0.2.7 →
 * 7.2.0.192.zone), IPv6 as 32 reversed nibbles. Undefined for anything else.
 */
export function queryName(ip: string, zone: string): string | undefined {
  if (isIPv4(ip)) return `${ip.split('.').reverse().join('.')}.${zone}`;
  if (!isIPv6(ip)) return undefined;
  const [head = '', tail] = ip.toLowerCase().split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return `${[...groups.map((g) => g.padStart(4, '0')).join('')].reverse().join('.')}.${zone}`;
}

/** A listing's TXT reason, made safe to put in an SMTP reply: printable ASCII only, at most 200 characters. */
export function safeReason(parts: string[][]): string | undefined {
  const text = parts.map((p) => p.join('')).join(' ').replace(/[^\x20-\x7e]+/g, ' ').replace(/\s+/g, ' ').trim();
  return text ? text.slice(0, 200) : undefined;
}

/** Errors that mean "not listed"; anything else (timeout, SERVFAIL) means "could not tell". */
const NOT_LISTED = new Set(['ENOTFOUND', 'ENODATA']);

/** Looks the client up in each zone, in parallel; returns the first listing in zone order. */
export async function lookup(resolver: Resolver, ip: string, zones: readonly string[], onError: (zone: string, err: Error) => void): Promise<Listing | undefined> {
  const results = await Promise.all(
    zones.map(async (zone): Promise<Listing | undefined> => {
      const name = queryName(ip, zone);
      if (!name) return undefined;
      let answers: string[];
      try {
        answers = await resolver.resolve4(name);
      } catch (err) {
        if (!NOT_LISTED.has((err as NodeJS.ErrnoException).code ?? '')) onError(zone, err as Error);
        return undefined;
      }
      const address = answers.find((a) => a.startsWith('127.'));
      if (!address) return undefined;
      const reason = await resolver.resolveTxt(name).then(safeReason, () => undefined);
      return { zone, address, ...(reason && { reason }) };
    }),
  );
  return results.find((r) => r !== undefined);
}

function withTimeout<T>(work: Promise<T>, ms: number, fallback: T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<T>((resolve) => {
    timer = setTimeout(() => resolve(fallback), ms);
    timer.unref();
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

/**
 * rblsmtpd as a `connect` plugin: a client whose address is listed in one of
 * `dnsbl.zones` is refused before the greeting, with the list's TXT reason.
 * 451 by default (rblsmtpd's way: a listing that is a mistake costs a delay,
 * not a bounce); `dnsbl.permanent` 1 makes it 553 (rblsmtpd -b). As with
 * rblsmtpd, tcprules may set `RBLSMTPD`: empty means "never check this
 * client", a text blocks the client with it (a leading `-` makes it permanent).
 * Lookups go through the Resolver service (control/dnsservers with plugin-remote).
 * A lookup that fails or outlasts `dnsbl.timeout` lets the client in and is logged.
 */
export const dnsblPlugin = definePlugin({
  name: 'dnsbl',
  version: '0.1.0',
  description: 'refuses clients listed in DNS blocklists at connect',
  control: {
    'dnsbl.zones': control.list({
      description: 'DNS blocklist zones, one per line, asked in this order',
      schema: { items: { type: 'string', pattern: ZONE } },
      parse: (raw) => raw.map((z) => z.toLowerCase()),
    }),
    'dnsbl.permanent': control.int({ description: '1: refuse listed clients with 553 instead of 451', default: 0, schema: { enum: [0, 1] } }),
    'dnsbl.timeout': control.int({ description: 'milliseconds to wait for all lookups of one client', default: 3000, schema: { minimum: 1 } }),
  },
  requires: [Tokens.Resolver],
  register(ctx) {
    let resolver: Resolver;
    ctx.hooks.init.tapPromise(ctx.name, async () => {
      resolver = ctx.resolve(Tokens.Resolver);
    });

    const refuse = (text: string, permanent: boolean): Verdict =>
      permanent ? deny(553, text, '5.7.1', true) : defer(451, text, '4.7.1', true);

    ctx.hooks.connect.tapPromise(ctx.name, async (conn: Connection) => {
      const preset = conn.env.RBLSMTPD;
      if (preset !== undefined) {
        if (preset === '') return undefined;
        const permanent = preset.startsWith('-');
        return refuse(safeReason([[permanent ? preset.slice(1) : preset]]) ?? 'refused', permanent);
      }
      const zones = ctx.config['dnsbl.zones'] ?? [];
      if (zones.length === 0) return undefined;
      const onError = (zone: string, err: Error) => ctx.log.warn({ ip: conn.remoteAddress, zone }, `dnsbl lookup of ${conn.remoteAddress} in ${zone} failed: ${err.message}; letting it in`);
      const listing = await withTimeout(lookup(resolver, conn.remoteAddress, zones, onError), ctx.config['dnsbl.timeout'], undefined);
      if (!listing) return undefined;
      ctx.log.info({ ip: conn.remoteAddress, zone: listing.zone, answer: listing.address }, `${conn.remoteAddress} is listed in ${listing.zone}`);
      const text = listing.reason ?? `your address ${conn.remoteAddress} is listed in ${listing.zone}`;
      return refuse(text, ctx.config['dnsbl.permanent'] === 1);
    });
  },
});
