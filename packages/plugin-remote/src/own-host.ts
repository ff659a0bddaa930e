import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { Fail } from '@quail/core';

/** Parses control/moreipme and control/notipme: one IP address per line. */
export function parseIpList(raw: string[], fail: Fail): string[] {
  return raw.map((line, i) => {
    const ip = line.trim().replace(/^\[(.*)\]$/, '$1');
    if (isIP(ip) === 0) return fail(i, `"${line.slice(0, 60)}" is not an IP address`);
    return normalise(ip);
  });
}

function normalise(ip: string): string {
  const lower = ip.toLowerCase();
  return lower.startsWith('::ffff:') && isIP(lower.slice(7)) === 4 ? lower.slice(7) : lower;
}

/**
 * This host's addresses as qmail's ipme sees them: every local interface
 * address, plus control/moreipme (addresses that reach us through NAT or a
 * load balancer), minus control/notipme (addresses that are ours but lead
 * elsewhere, such as a loopback relay). The moreipme/notipme names follow the
 * qmail patch of the same name.
 */
export function ownAddresses(more: readonly string[], not: readonly string[]): Set<string> {
  const ips = new Set<string>();
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) ips.add(normalise(a.address));
  for (const ip of more) ips.add(normalise(ip));
  for (const ip of not) ips.delete(normalise(ip));
  return ips;
}

/** True when `name` is one of this host's names (control/me and control/locals). */
export function isOwnName(name: string, me: string, locals: readonly string[]): boolean {
  const n = name.toLowerCase().replace(/\.$/, '');
  return n === me.toLowerCase() || locals.some((l) => l.toLowerCase() === n);
}

export { normalise as normaliseIp };
