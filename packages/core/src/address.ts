/** An envelope address split at its last `@`, as qmail splits it. */
export interface EnvelopeAddress {
  /** The whole address as given, case kept as qmail keeps it (`` for the null sender). */
  address: string;
  /** The part before the last `@` (the whole address when there is none). */
  local: string;
  /** The part after the last `@`, lower-cased; empty when the address has no `@`. */
  domain: string;
  /** ESMTP parameters given with MAIL/RCPT (`SIZE`, `BODY`, ...), upper-case keys. */
  params?: Record<string, string | true>;
}

export function splitAddress(address: string, params?: Record<string, string | true>): EnvelopeAddress {
  const at = address.lastIndexOf('@');
  const local = at < 0 ? address : address.slice(0, at);
  const domain = at < 0 ? '' : address.slice(at + 1).toLowerCase();
  return { address, local, domain, ...(params && { params }) };
}

/**
 * Suffix keys tried by qmail's lookups: the domain itself, then every suffix that
 * starts at a dot, longest first. `a.b.c` gives `a.b.c`, `.b.c`, `.c`.
 */
export function domainSuffixes(domain: string): string[] {
  const d = domain.toLowerCase();
  const keys = [d];
  for (let i = d.indexOf('.'); i >= 0; i = d.indexOf('.', i + 1)) keys.push(d.slice(i));
  return keys;
}

/** qmail's rcpthosts rule: exact domain or a `.suffix` entry; an address with no domain always matches. */
export function matchesHostList(domain: string, hosts: ReadonlySet<string>): boolean {
  if (domain === '') return true;
  return domainSuffixes(domain).some((key) => hosts.has(key));
}
