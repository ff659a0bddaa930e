import { domainSuffixes, type Route } from '@quail/core';

export interface RoutingControls {
  envnoathost: string;
  percenthack: readonly string[];
  locals: readonly string[];
  virtualdomains: Readonly<Record<string, string>>;
}

function split(address: string): { local: string; domain: string } {
  const at = address.lastIndexOf('@');
  return { local: address.slice(0, at), domain: address.slice(at + 1) };
}

/** The first virtualdomains entry that applies, in qmail's order: user@domain, domain, .suffixes, the empty key. */
function virtualPrefix(address: string, domain: string, map: Readonly<Record<string, string>>): string | undefined {
  const has = (key: string) => Object.prototype.hasOwnProperty.call(map, key);
  const keys = [address.toLowerCase(), ...domainSuffixes(domain), ''];
  for (const key of keys) if (has(key)) return map[key];
  return undefined;
}

/**
 * qmail-send's rewrite(): where a recipient goes and under what address.
 *  1. no `@`: append `@envnoathost`;
 *  2. while the domain is in percenthack and the local part has `%`, the last `%` becomes `@`;
 *  3. domain in locals: local, unchanged;
 *  4. virtualdomains hit with a non-empty prefix P: local, `P-<address>`; an empty prefix stops the lookup;
 *  5. otherwise remote.
 */
export function routeRecipient(recipient: string, controls: RoutingControls): Route {
  let address = recipient.includes('@') ? recipient : `${recipient}@${controls.envnoathost}`;
  const percent = new Set(controls.percenthack.map((d) => d.toLowerCase()));
  for (;;) {
    const { local, domain } = split(address);
    const cut = local.lastIndexOf('%');
    if (cut < 0 || !percent.has(domain.toLowerCase())) break;
    address = `${local.slice(0, cut)}@${local.slice(cut + 1)}`;
  }
  const { domain } = split(address);
  const lower = domain.toLowerCase();
  if (controls.locals.some((d) => d.toLowerCase() === lower)) return { channel: 'local', recipient, address };
  const prefix = virtualPrefix(address, lower, controls.virtualdomains);
  if (prefix) return { channel: 'local', recipient, address: `${prefix}-${address}`, prefix };
  return { channel: 'remote', recipient, address };
}

/** The address a bounce names: the routed address without its virtualdomains prefix. */
export function bounceAddress(route: Route): string {
  const address = route.prefix && route.address.startsWith(`${route.prefix}-`) ? route.address.slice(route.prefix.length + 1) : route.address;
  return address.replace(/\n/g, '_');
}
