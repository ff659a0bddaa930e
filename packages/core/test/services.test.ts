import { describe, expect, it } from 'vitest';
import { ErrorCodes, Tokens, createServer, definePlugin, serviceToken, type Plugin, type QuailError } from '@quail/core';
import { tempRoot } from '@quail/core/testing';

interface Counter {
  next(): number;
}
const CounterToken = serviceToken<Counter>('test.Counter');

const provider = (name = 'counter') =>
  definePlugin({
    name,
    provides: [CounterToken],
    register(ctx) {
      let n = 0;
      ctx.provide(CounterToken, { next: () => ++n });
    },
  });

const consumer = definePlugin({
  name: 'consumer',
  requires: [CounterToken],
  register() {},
});

async function startWith(plugins: Plugin[]) {
  const { root, cleanup } = await tempRoot();
  const server = createServer({ root, plugins, log: { level: 'silent' } });
  const started = server.start();
  return { server, started, cleanup };
}

async function startError(plugins: Plugin[]): Promise<QuailError> {
  const { started, cleanup } = await startWith(plugins);
  const err = await started.then(
    () => undefined,
    (e: QuailError) => e,
  );
  await cleanup();
  if (!err) throw new Error('start should have failed');
  return err;
}

describe('services between plugins', () => {
  it('resolves what a plugin provides', async () => {
    const { server, started, cleanup } = await startWith([provider(), consumer]);
    await started;
    expect(server.resolve(CounterToken).next()).toBe(1);
    await server.stop();
    await cleanup();
  });

  it('fails start when a requirement has no provider, naming plugin and service', async () => {
    const err = await startError([consumer]);
    expect(err.code).toBe(ErrorCodes.SERVICE_MISSING);
    expect(err.message).toBe('plugin consumer requires test.Counter, which no loaded plugin provides');
  });

  it('fails start when two plugins provide one service', async () => {
    const err = await startError([provider('a'), provider('b')]);
    expect(err.code).toBe(ErrorCodes.SERVICE_DUPLICATE);
    expect(err.message).toContain('plugins a and b both provide test.Counter');
  });

  it('fails start when two plugins share a name', async () => {
    const err = await startError([provider('same'), definePlugin({ name: 'same', register() {} })]);
    expect(err.code).toBe(ErrorCodes.PLUGIN_DUPLICATE);
    expect(err.message).toContain('two plugins are named same');
  });

  it('fails start when a plugin declares a service but never registers it', async () => {
    const liar = definePlugin({ name: 'liar', provides: [CounterToken], register() {} });
    const err = await startError([liar]);
    expect(err.code).toBe(ErrorCodes.SERVICE_NOT_REGISTERED);
    expect(err.message).toContain('plugin liar declares that it provides test.Counter');
  });

  it('refuses a registration that was not declared', async () => {
    const sneaky = definePlugin({ name: 'sneaky', register: (ctx) => ctx.provide(CounterToken, { next: () => 0 }) });
    const err = await startError([sneaky]);
    expect(err.message).toContain('plugin sneaky registers test.Counter without declaring it in provides');
  });

  it('lets a plugin replace a core default such as the Resolver', async () => {
    const fake = { resolveMx: async () => [{ exchange: 'mx.test', priority: 1 }] } as never;
    const dns = definePlugin({ name: 'dns', provides: [Tokens.Resolver], register: (ctx) => ctx.provide(Tokens.Resolver, fake) });
    const { server, started, cleanup } = await startWith([dns]);
    await started;
    expect(server.resolve(Tokens.Resolver)).toBe(fake);
    await server.stop();
    await cleanup();
  });

  it('creates a factory service once per server', async () => {
    let made = 0;
    const lazy = definePlugin({
      name: 'lazy',
      provides: [CounterToken],
      register: (ctx) => ctx.provideFactory(CounterToken, () => (made++, { next: () => 7 })),
    });
    const { server, started, cleanup } = await startWith([lazy]);
    await started;
    expect(made).toBe(0);
    server.resolve(CounterToken);
    server.resolve(CounterToken);
    expect(made).toBe(1);
    await server.stop();
    await cleanup();
  });

  it('keeps two servers in one process apart', async () => {
    const a = await startWith([provider()]);
    const b = await startWith([provider()]);
    await Promise.all([a.started, b.started]);
    const ca = a.server.resolve(CounterToken);
    const cb = b.server.resolve(CounterToken);
    expect(ca).not.toBe(cb);
    expect([ca.next(), ca.next(), cb.next()]).toEqual([1, 2, 1]);
    expect(a.server.hooks).not.toBe(b.server.hooks);
    expect(a.server.resolve(Tokens.Logger)).not.toBe(b.server.resolve(Tokens.Logger));
    await Promise.all([a.server.stop(), b.server.stop()]);
    await Promise.all([a.cleanup(), b.cleanup()]);
  });

  it('gives each plugin its own notes namespace', async () => {
    const { Connection } = await import('@quail/core');
    const seen: unknown[] = [];
    const writer = definePlugin({
      name: 'writer',
      register: (ctx) => void ctx.hooks.connect.tapPromise(ctx.name, async (c) => void (ctx.notes<{ n: number }>(c).n = 1)),
    });
    const reader = definePlugin({
      name: 'reader',
      register: (ctx) => void ctx.hooks.connect.tapPromise(ctx.name, async (c) => void seen.push(ctx.notes(c).n, c.notes.of('writer').n)),
    });
    const { server, started, cleanup } = await startWith([writer, reader]);
    await started;
    await server.hooks.connect.promise(new Connection({ protocol: 'smtp', remoteAddress: '::ffff:127.0.0.1', remotePort: 1, localAddress: '127.0.0.1', localPort: 25 }));
    expect(seen).toEqual([undefined, 1]);
    await server.stop();
    await cleanup();
  });
});
