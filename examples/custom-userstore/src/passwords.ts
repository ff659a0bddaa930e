import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';

const scryptAsync = promisify(scrypt) as (password: string, salt: Buffer, keylen: number, options: { N: number }) => Promise<Buffer>;
const COST = 16384;
const KEY_LENGTH = 32;

/** `scrypt$<N>$<salt base64>$<hash base64>`: what users.json keeps instead of a password. */
export async function hashPassword(password: string, cost = COST): Promise<string> {
  const salt = randomBytes(16);
  const hash = await scryptAsync(password, salt, KEY_LENGTH, { N: cost });
  return `scrypt$${cost}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

/** True when `stored` is a valid scrypt string and `password` matches it (constant-time compare). */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = parseHash(stored);
  if (!parts) return false;
  const hash = await scryptAsync(password, parts.salt, parts.hash.length, { N: parts.cost });
  return timingSafeEqual(hash, parts.hash);
}

export function parseHash(stored: string): { cost: number; salt: Buffer; hash: Buffer } | undefined {
  const m = /^scrypt\$(\d{1,7})\$([A-Za-z0-9+/=]{8,})\$([A-Za-z0-9+/=]{16,})$/.exec(stored);
  if (!m) return undefined;
  const cost = Number(m[1]);
  if (cost < 2 || cost > 1048576 || (cost & (cost - 1)) !== 0) return undefined;
  return { cost, salt: Buffer.from(m[2]!, 'base64'), hash: Buffer.from(m[3]!, 'base64') };
}
