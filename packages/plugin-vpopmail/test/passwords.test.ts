import { describe, expect, it } from 'vitest';
import { VerifiedPasswordCache } from '../src/verified-cache.js';
import { apopDigest, cramMd5Digest, hashPassword, schemeOf, verifyPassword, type HashScheme } from '../src/passwords.js';
import { openssl, python, pythonCrypt } from './helpers.js';

const passwords = ['hunter2', 'contraseña', 'p@ss w0rd!#$%&*', 'x'.repeat(100)];

describe('password hashes made by other tools verify', () => {
  for (const password of passwords) {
    for (const flag of ['-1', '-5', '-6']) {
      it(`openssl passwd ${flag} ${JSON.stringify(password.slice(0, 12))}`, () => {
        const hash = openssl('passwd', flag, password);
        expect(verifyPassword(password, hash)).toBe(true);
        expect(verifyPassword(password + 'x', hash)).toBe(false);
        expect(verifyPassword('', hash)).toBe(false);
      });
    }
  }

  it('Python crypt: DES, MD5, SHA-256, SHA-512 and SHA-512 with rounds', () => {
    const [des, md5, sha256, sha512, rounds] = python(
      [
        'import crypt, sys',
        'p = sys.argv[1]',
        "print(crypt.crypt(p, 'Xy'))",
        'print(crypt.crypt(p, crypt.METHOD_MD5))',
        'print(crypt.crypt(p, crypt.METHOD_SHA256))',
        'print(crypt.crypt(p, crypt.METHOD_SHA512))',
        "print(crypt.crypt(p, '$6$rounds=1500$abcdefghijklmnop'))",
      ].join('\n'),
      'secret99',
    );
    for (const hash of [des!, md5!, sha256!, sha512!, rounds!]) {
      expect(verifyPassword('secret99', hash), hash).toBe(true);
      expect(verifyPassword('secret98', hash), hash).toBe(false);
    }
    expect(schemeOf(des!)).toBe('des');
    expect(rounds).toMatch(/^\$6\$rounds=1500\$/);
  });

  it('DES looks at the first 8 bytes only, as crypt(3) does', () => {
    const hash = pythonCrypt('abcdefgh-tail', 'ab');
    expect(verifyPassword('abcdefgh', hash)).toBe(true);
    expect(verifyPassword('abcdefg', hash)).toBe(false);
  });

  it('unknown or damaged hashes never match', () => {
    for (const hash of ['', '*', '!', '$2y$10$abcdefghijklmnopqrstuv', '$6$', '$1$$', 'plaintext', '$6$rounds=x$salt$hash']) {
      expect(verifyPassword('', hash)).toBe(false);
      expect(verifyPassword('plaintext', hash)).toBe(false);
    }
  });
});

describe("quail's own hashes verify with Python and openssl", () => {
  for (const scheme of ['sha512', 'sha256', 'md5', 'des'] as HashScheme[]) {
    it(scheme, () => {
      const hash = hashPassword('contraseña', scheme);
      expect(pythonCrypt('contraseña', hash)).toBe(hash);
      expect(verifyPassword('contraseña', hash)).toBe(true);
      if (scheme !== 'des') {
        const [, , salt] = hash.split('$');
        const flag = { md5: '-1', sha256: '-5', sha512: '-6' }[scheme];
        expect(openssl('passwd', flag, '-salt', salt!, 'contraseña')).toBe(hash);
      }
    });
  }

  it('SHA-512 is the default and every hash gets a new salt', () => {
    const a = hashPassword('same');
    const b = hashPassword('same');
    expect(a).toMatch(/^\$6\$[./0-9A-Za-z]{16}\$[./0-9A-Za-z]{86}$/);
    expect(a).not.toBe(b);
  });
});

describe('APOP and CRAM-MD5 digests match Python', () => {
  it('APOP is md5(timestamp + password)', () => {
    const ts = '<1896.697170952@dbc.mtview.ca.us>';
    // RFC 1939's own example.
    expect(apopDigest(ts, 'tanstaaf')).toBe('c4c9334bac560ecc979e58001b3e22fb');
  });

  it('CRAM-MD5 is hmac-md5(password, challenge)', () => {
    const challenge = '<1896.697170952@postoffice.reston.mci.net>';
    // RFC 2195's own example.
    expect(cramMd5Digest(challenge, 'tanstaaftanstaaf')).toBe('b913a602c7eda7a495b4e6e7334d3890');
    const [py] = python('import hmac, sys; print(hmac.new(sys.argv[2].encode(), sys.argv[1].encode(), "md5").hexdigest())', challenge, 'contraseña');
    expect(cramMd5Digest(challenge, 'contraseña')).toBe(py);
  });
});

describe('the cache of verified passwords', () => {
  it('answers like the full check, keeps only successes, and is bounded', async () => {
    const checked: string[] = [];
    const cache = new VerifiedPasswordCache(async (candidate, stored) => {
      checked.push(candidate);
      return verifyPassword(candidate, stored);
    }, 2);
    const hashes = ['a1', 'b2', 'c3'].map((pw) => hashPassword(pw, 'md5'));
    expect(await cache.verify('a1', hashes[0]!)).toBe(true);
    expect(await cache.verify('a1', hashes[0]!)).toBe(true);
    expect(checked).toEqual(['a1']);
    expect(await cache.verify('wrong', hashes[0]!)).toBe(false);
    expect(await cache.verify('a1x', hashes[1]!)).toBe(false);
    expect(cache.size).toBe(1);
    expect(await cache.verify('b2', hashes[1]!)).toBe(true);
    expect(await cache.verify('c3', hashes[2]!)).toBe(true);
    expect(cache.size).toBe(2);
    // a1 was the oldest entry and has gone: it is checked in full again.
    checked.length = 0;
    expect(await cache.verify('a1', hashes[0]!)).toBe(true);
    expect(checked).toEqual(['a1']);
    // A new hash for the same password (password changed) is checked afresh.
    const changed = hashPassword('a1', 'md5');
    expect(await cache.verify('a1', changed)).toBe(true);
    expect(await cache.verify('b2', changed)).toBe(false);
  });
});
