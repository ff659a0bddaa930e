import { describe, expect, it } from 'vitest';
import { LoginThrottle, ManualClock, Tokens, createServer, definePlugin, type Authenticator, type Credentials } from '@quail/core';
import { tempRoot } from '@quail/core/testing';

const users: Record<string, string> = { 'joe@example.test': 'right' };

/** A user table as a real Authenticator provider would have one. */
const table = definePlugin({
  name: 'table-users',
  provides: [Tokens.Authenticator],
  register(ctx) {
    const auth: Authenticator = {
      mechanisms: () => ['PLAIN', 'USER'],
      async authenticate(c) {
        return users[c.username] === c.password
          ? { ok: true, user: { address: c.username, name: 'joe', domain: 'example.test', home: '/h', maildir: '/h/Maildir', flags: {} } }
          : { ok: false, reason: 'bad-credentials' };
      },
    };
    ctx.provide(Tokens.Authenticator, auth);
  },
});

async function server(files: Record<string, string> = {}) {
  const clock = new ManualClock();
  const { root, cleanup } = await tempRoot(files);
  const s = createServer({ root, plugins: [table], log: { level: 'silent' }, services: [[Tokens.Clock, clock]] });
  await s.start();
  const auth = s.resolve(Tokens.Authenticator);
  const login = (password: string, remoteAddress?: string) =>
    auth.authenticate({ mechanism: 'PLAIN', service: 'smtp', username: 'joe@example.test', password, ...(remoteAddress && { remoteAddress }) } as Credentials);
  return { clock, login, server: s, cleanup: async () => (await s.stop(), await cleanup()) };
}

describe('login throttle', () => {
  it('refuses an address after loginfailures failures, even with the right password, and not other addresses', async () => {
    const { login, cleanup } = await server({ loginfailures: '3\n' });
    for (let i = 0; i < 3; i++) expect(await login('wrong', '192.0.2.7')).toEqual({ ok: false, reason: 'bad-credentials' });
    expect(await login('right', '192.0.2.7')).toMatchObject({ ok: false, reason: 'temporary' });
    expect(await login('right', '192.0.2.8')).toMatchObject({ ok: true });
    await cleanup();
  });

  it('lets the address in again once loginwindow has passed since its last failure', async () => {
    const { login, clock, cleanup } = await server({ loginfailures: '2\n', loginwindow: '60\n' });
    await login('wrong', '192.0.2.7');
    await login('wrong', '192.0.2.7');
    await clock.advance(59_000);
    expect(await login('right', '192.0.2.7')).toMatchObject({ ok: false, reason: 'temporary' });
    await clock.advance(2_000);
    expect(await login('right', '192.0.2.7')).toMatchObject({ ok: true });
    await cleanup();
  });

  it('forgets failures after a success', async () => {
    const { login, cleanup } = await server({ loginfailures: '2\n' });
    await login('wrong', '192.0.2.7');
    expect(await login('right', '192.0.2.7')).toMatchObject({ ok: true });
    await login('wrong', '192.0.2.7');
    expect(await login('right', '192.0.2.7')).toMatchObject({ ok: true });
    await cleanup();
  });

  it('is off with loginfailures 0, and leaves checks without an address alone', async () => {
    const { login, cleanup } = await server({ loginfailures: '0\n' });
    for (let i = 0; i < 50; i++) await login('wrong', '192.0.2.7');
    expect(await login('right', '192.0.2.7')).toMatchObject({ ok: true });
    await cleanup();
    const other = await server({ loginfailures: '1\n' });
    for (let i = 0; i < 5; i++) await other.login('wrong');
    expect(await other.login('right')).toMatchObject({ ok: true });
    await other.cleanup();
  });

  it('applies a reloaded limit at once', async () => {
    const { login, server: s, cleanup } = await server({ loginfailures: '100\n' });
    for (let i = 0; i < 5; i++) await login('wrong', '192.0.2.7');
    const { writeFile } = await import('node:fs/promises');
    await writeFile(`${s.root}/control/loginfailures`, '5\n');
    expect(await s.reload()).toBe(true);
    expect(await login('right', '192.0.2.7')).toMatchObject({ ok: false, reason: 'temporary' });
    await cleanup();
  });

  it('keeps a bounded number of addresses', () => {
    const clock = new ManualClock();
    const throttle = new LoginThrottle(clock, () => ({ maxFailures: 3, windowSeconds: 900 }), 100);
    for (let i = 0; i < 1000; i++) throttle.fail(`10.0.${i >> 8}.${i & 255}`);
    expect(throttle.size).toBe(100);
    expect(throttle.failures('10.0.3.231')).toBe(1);
    expect(throttle.failures('10.0.0.0')).toBe(0);
  });
});
