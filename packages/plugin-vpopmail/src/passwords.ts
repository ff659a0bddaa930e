/// <reference path="./vendor/crypt-modules.d.ts" />
import { createHash, createHmac, randomInt, timingSafeEqual } from 'node:crypto';
import md5crypt from 'apache-md5';
import descrypt from 'unix-crypt-td-js';
import { encrypt as shacrypt } from 'unixcrypt';

/** Hash formats of vpasswd field 2 (reference 9.4). */
export type HashScheme = 'des' | 'md5' | 'sha256' | 'sha512';

const SALT_CHARS = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

function randomSalt(length: number): string {
  let salt = '';
  for (let i = 0; i < length; i++) salt += SALT_CHARS[randomInt(SALT_CHARS.length)];
  return salt;
}

/** The password's UTF-8 bytes as a latin1 string: the MD5 library hashes string characters as bytes. */
function byteString(password: string): string {
  return Buffer.from(password, 'utf8').toString('latin1');
}

export function schemeOf(hash: string): HashScheme | undefined {
  if (hash.startsWith('$1$')) return 'md5';
  if (hash.startsWith('$5$')) return 'sha256';
  if (hash.startsWith('$6$')) return 'sha512';
  if (/^[./0-9A-Za-z]{13}$/.test(hash)) return 'des';
  return undefined;
}

/**
 * One call of a hashing library: everything scheme-specific is worked out
 * beforehand, so that the same job can run here or in a worker thread
 * (see password-hasher.ts) and the result is compared here.
 */
export type CryptJob =
  | { kind: 'des'; key: number[]; salt: string }
  | { kind: 'md5'; key: string; salt: string }
  | { kind: 'sha'; key: string; setting: string };

/** The job computing crypt(3) of `password` with the salt (and rounds) taken from `setting`. */
export function cryptJob(password: string, setting: string, scheme: HashScheme): CryptJob {
  switch (scheme) {
    case 'des':
      return { kind: 'des', key: [...Buffer.from(password, 'utf8')], salt: setting.slice(0, 2) };
    case 'md5':
      return { kind: 'md5', key: byteString(password), salt: `$1$${setting.slice(3).split('$')[0]!.slice(0, 8)}$` };
    case 'sha256':
    case 'sha512': {
      // The setting without the hash part: `$6$salt` or `$6$rounds=N$salt`.
      const parts = setting.split('$');
      const keep = parts[2]?.startsWith('rounds=') ? 4 : 3;
      return { kind: 'sha', key: password, setting: parts.slice(0, keep).join('$') };
    }
  }
}

/** Runs a job on this thread; undefined when the library refuses the setting. */
export function runCryptJob(job: CryptJob): string | undefined {
  try {
    switch (job.kind) {
      case 'des':
        return descrypt(job.key, job.salt);
      case 'md5':
        return md5crypt(job.key, job.salt);
      case 'sha':
        return shacrypt(job.key, job.setting);
    }
  } catch {
    return undefined;
  }
}

/** A setting with a new random salt for `scheme`. */
export function newSetting(scheme: HashScheme): string {
  switch (scheme) {
    case 'des':
      return randomSalt(2);
    case 'md5':
      return `$1$${randomSalt(8)}`;
    case 'sha256':
      return `$5$${randomSalt(16)}`;
    case 'sha512':
      return `$6$${randomSalt(16)}`;
  }
}

/** Whether a computed crypt(3) result is the stored hash, compared in constant time. */
export function matchesStored(computed: string | undefined, stored: string): boolean {
  return computed !== undefined && equalInConstantTime(computed, stored);
}

/**
 * `crypt(candidate, stored) == stored` on the calling thread. Unknown formats
 * never match. A server checks logins through PasswordHasher instead, which
 * keeps this work off the event loop.
 */
export function verifyPassword(candidate: string, stored: string): boolean {
  const scheme = schemeOf(stored);
  return scheme !== undefined && matchesStored(runCryptJob(cryptJob(candidate, stored, scheme)), stored);
}

/** A new hash with a random salt on the calling thread; SHA-512 (`$6$`) unless another scheme is asked for. */
export function hashPassword(password: string, scheme: HashScheme = 'sha512'): string {
  return runCryptJob(cryptJob(password, newSetting(scheme), scheme))!;
}

export function equalInConstantTime(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  if (x.length !== y.length) {
    timingSafeEqual(x, x);
    return false;
  }
  return timingSafeEqual(x, y);
}

/** APOP (RFC 1939): hex MD5 of the greeting's timestamp followed by the clear-text password. */
export function apopDigest(timestamp: string, clear: string): string {
  return createHash('md5').update(timestamp + clear, 'utf8').digest('hex');
}

/** CRAM-MD5 (RFC 2195): hex HMAC-MD5 of the challenge keyed with the clear-text password. */
export function cramMd5Digest(challenge: string, clear: string): string {
  return createHmac('md5', Buffer.from(clear, 'utf8')).update(challenge, 'utf8').digest('hex');
}

const PASSWORD_CHARS = 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789';

/** A random password for `vadduser -r`: letters and digits that cannot be confused. */
export function randomPassword(length = 14): string {
  let pw = '';
  for (let i = 0; i < length; i++) pw += PASSWORD_CHARS[randomInt(PASSWORD_CHARS.length)];
  return pw;
}
