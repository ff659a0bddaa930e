import { parseHash } from './passwords.js';

/** One user as users.json describes it. */
export interface JsonUser {
  /** `scrypt$N$salt$hash` (see passwords.ts). */
  password: string;
  /** Maildir++ quota in bytes; absent: none. */
  quotaBytes?: number;
  /** A disabled user keeps receiving mail but cannot log in. */
  disabled?: boolean;
}

export interface JsonDomain {
  /** Other names of the domain (mail to joe@alias goes to joe@domain). */
  aliases: string[];
  users: Map<string, JsonUser>;
}

/** users.json, checked: domains and user names lower-case. */
export interface UserFile {
  domains: Map<string, JsonDomain>;
  /** Alias or real domain name → real domain name. */
  names: Map<string, string>;
}

const DOMAIN = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;
/** User names safe as directory names: no dots first, no slashes, no dashes (they start an extension). */
const USER = /^[a-z0-9_][a-z0-9_.]{0,63}$/;

/** A problem in users.json, with the JSON path of the entry at fault. */
export class UserFileError extends Error {}

/** Parses and checks users.json; every error names the file and the entry. */
export function parseUserFile(text: string, file: string): UserFile {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new UserFileError(`${file}: not JSON: ${(err as Error).message}`);
  }
  const fail = (where: string, reason: string): never => {
    throw new UserFileError(`${file}: ${where}: ${reason}`);
  };
  const object = (value: unknown, where: string): Record<string, unknown> =>
    typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : fail(where, 'must be an object');
  const domains = new Map<string, JsonDomain>();
  const names = new Map<string, string>();
  for (const [rawDomain, rawEntry] of Object.entries(object(object(data, '(top)').domains, 'domains'))) {
    const domain = rawDomain.toLowerCase();
    const at = `domains.${rawDomain}`;
    if (!DOMAIN.test(domain)) fail(at, 'is not a domain name');
    const entry = object(rawEntry, at);
    const aliases = entry.aliases ?? [];
    if (!Array.isArray(aliases) || !aliases.every((a) => typeof a === 'string' && DOMAIN.test(a.toLowerCase()))) fail(`${at}.aliases`, 'must be a list of domain names');
    const users = new Map<string, JsonUser>();
    for (const [rawUser, rawSpec] of Object.entries(object(entry.users ?? {}, `${at}.users`))) {
      const where = `${at}.users.${rawUser}`;
      const name = rawUser.toLowerCase();
      if (!USER.test(name)) fail(where, 'user names are letters, digits, _ and . (not first), up to 64');
      const spec = object(rawSpec, where);
      if (typeof spec.password !== 'string' || !parseHash(spec.password)) fail(`${where}.password`, 'must be a scrypt$N$salt$hash string (see hashPassword)');
      if (spec.quotaBytes !== undefined && !(Number.isSafeInteger(spec.quotaBytes) && (spec.quotaBytes as number) > 0)) fail(`${where}.quotaBytes`, 'must be a positive whole number');
      if (spec.disabled !== undefined && typeof spec.disabled !== 'boolean') fail(`${where}.disabled`, 'must be true or false');
      users.set(name, spec as unknown as JsonUser);
    }
    for (const name of [domain, ...(aliases as string[]).map((a) => a.toLowerCase())]) {
      if (names.has(name)) fail(at, `${name} is named twice`);
      names.set(name, domain);
    }
    domains.set(domain, { aliases: (aliases as string[]).map((a) => a.toLowerCase()), users });
  }
  return { domains, names };
}
