import { invalid, shown } from './errors.js';

/** vpopmail 5.4 limits (reference 9.4). */
export const Limits = { user: 64, domain: 96, password: 128, gecos: 64, dir: 160 } as const;

/** Characters vpopmail's is_username_valid lets through besides letters and digits. */
const USER_CHARS = /^[a-z0-9!#$&'*+\-.=?^_`{|}~]+$/;
const DOMAIN_LABEL = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/;

/**
 * A domain name as vpopmail accepts it, lower-cased: letters, digits, `-` and `.`,
 * 3 to 96 characters, no empty label, no label starting or ending with `-`.
 * Returns undefined for anything else (nothing outside `domains/` can be named).
 */
export function domainName(input: string): string | undefined {
  const d = input.toLowerCase();
  if (d.length < 3 || d.length > Limits.domain) return undefined;
  const labels = d.split('.');
  if (labels.length < 1 || !labels.every((l) => DOMAIN_LABEL.test(l))) return undefined;
  return d;
}

/**
 * A user name as vpopmail accepts it, lower-cased. quail also refuses `/`, a
 * leading `.` and names of only dots, so that a name is always one directory
 * inside the domain directory.
 */
export function userName(input: string): string | undefined {
  const u = input.toLowerCase();
  if (u.length < 1 || u.length > Limits.user) return undefined;
  if (!USER_CHARS.test(u) || u.startsWith('.')) return undefined;
  return u;
}

export function requireDomain(input: string): string {
  const d = domainName(input);
  if (!d) throw invalid(`Invalid domain name: ${shown(input)}`);
  return d;
}

export function requireUser(input: string): string {
  const u = userName(input);
  if (!u) throw invalid(`Invalid user name: ${shown(input)}`);
  return u;
}

/**
 * Splits `user@domain` (vpopmail also accepts `%` as the separator). A bare
 * name takes `defaultDomain`; without one the address is refused.
 */
export function splitLogin(input: string, defaultDomain?: string): { user: string; domain: string } | undefined {
  let at = input.lastIndexOf('@');
  if (at < 0) at = input.lastIndexOf('%');
  if (at < 0) return defaultDomain ? { user: input, domain: defaultDomain } : undefined;
  return { user: input.slice(0, at), domain: input.slice(at + 1) };
}

/** Validated and normalised `user@domain`; errors name what is wrong in one line. */
export function requireAddress(input: string, defaultDomain?: string): { user: string; domain: string } {
  const parts = splitLogin(input, defaultDomain);
  if (!parts) throw invalid(`You did not use a full email address for the user name: ${shown(input)}`);
  return { user: requireUser(parts.user), domain: requireDomain(parts.domain) };
}

/**
 * Passwords end up in field 2 (hashed) and field 8 (clear text) of a
 * `:`-separated, LF-terminated line, so `:`, CR, LF and NUL are refused.
 */
export function requirePassword(password: string): string {
  if (password.length === 0) throw invalid('Empty passwords are not allowed');
  if (Buffer.byteLength(password) > Limits.password) throw invalid(`Password longer than ${Limits.password} bytes`);
  if (/[:\r\n\0]/.test(password)) throw invalid('Passwords may not contain ":", CR, LF or NUL');
  return password;
}

export function requireGecos(gecos: string): string {
  if (gecos.length > Limits.gecos) throw invalid(`Comment longer than ${Limits.gecos} characters`);
  if (/[:\x00-\x1f\x7f]/.test(gecos)) throw invalid('Comments may not contain ":" or control characters');
  return gecos;
}

/** vpopmail writes dots of an alias name as `:` in `.qmail-<alias>` file names. */
export function dotQmailSuffix(name: string): string {
  return name.replace(/\./g, ':');
}
