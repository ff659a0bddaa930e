import { describe, expect, it } from 'vitest';
import { Stage, accept, createServer, definePlugin, deny, splitAddress, type Plugin } from '@quail/core';
import { tempRoot } from '@quail/core/testing';
import { connection, recordingLogger, transaction } from './helpers.js';

async function serverWith(plugins: Plugin[], logger = recordingLogger().logger) {
  const { root, cleanup } = await tempRoot({ me: 'mx.example.test\n' });
  const server = createServer({ root, plugins, logger });
  await server.start();
  return { server, cleanup: async () => (await server.stop(), await cleanup()) };
}

describe('session hooks', () => {
  it('run taps in plugin order and stop at the first verdict', async () => {
    const calls: string[] = [];
    const mk = (name: string, result?: ReturnType<typeof deny>) =>
      definePlugin({
        name,
        register(ctx) {
          ctx.hooks.rcpt.tapPromise(ctx.name, async () => {
            calls.push(name);
            return result;
          });
        },
      });
    const { server, cleanup } = await serverWith([mk('first'), mk('second', deny(550, 'no such user', '5.1.1')), mk('third')]);
    const verdict = await server.hooks.rcpt.promise(transaction(), splitAddress('x@example.test'));
    expect(calls).toEqual(['first', 'second']);
    expect(verdict).toEqual({ kind: 'deny', code: 550, message: 'no such user', enhanced: '5.1.1' });
    await cleanup();
  });

  it('orders taps by stage before plugin order', async () => {
    const calls: string[] = [];
    const early = definePlugin({
      name: 'late-listed-early-stage',
      register(ctx) {
        ctx.hooks.mail.tapPromise({ name: ctx.name, stage: Stage.EARLY }, async () => void calls.push('early'));
      },
    });
    const normal = definePlugin({
      name: 'normal',
      register(ctx) {
        ctx.hooks.mail.tapPromise(ctx.name, async () => void calls.push('normal'));
      },
    });
    const { server, cleanup } = await serverWith([normal, early]);
    expect(await server.hooks.mail.promise(transaction(), splitAddress('a@b.test'))).toBeUndefined();
    expect(calls).toEqual(['early', 'normal']);
    await cleanup();
  });

  it('treats null and false as "no opinion" and passes on', async () => {
    const p = definePlugin({
      name: 'nully',
      register(ctx) {
        ctx.hooks.helo.tap(ctx.name, () => null as never);
        ctx.hooks.helo.tapPromise('falsy', async () => false as never);
        ctx.hooks.helo.tapPromise('decider', async () => accept('hello'));
      },
    });
    const { server, cleanup } = await serverWith([p]);
    expect(await server.hooks.helo.promise(connection(), 'client.test')).toEqual({ kind: 'accept', message: 'hello' });
    await cleanup();
  });

  it('turns a throwing plugin into a 451 deferral and logs its name', async () => {
    const { logger, records } = recordingLogger();
    const bad = definePlugin({
      name: 'broken',
      register(ctx) {
        ctx.hooks.connect.tapPromise(ctx.name, async () => {
          throw new Error('database down');
        });
        ctx.hooks.rcpt.tap(ctx.name, () => {
          throw new Error('sync failure');
        });
        ctx.hooks.mail.tapAsync(ctx.name, (_tx, _a, cb) => cb(new Error('callback failure')));
      },
    });
    const after = definePlugin({ name: 'after', register: (ctx) => void ctx.hooks.connect.tapPromise(ctx.name, async () => deny(554, 'never reached')) });
    const { server, cleanup } = await serverWith([bad, after], logger);
    expect(await server.hooks.connect.promise(connection())).toMatchObject({ kind: 'defer', code: 451, enhanced: '4.3.0' });
    expect(await server.hooks.rcpt.promise(transaction(), splitAddress('a@b.test'))).toMatchObject({ kind: 'defer', code: 451 });
    expect(await server.hooks.mail.promise(transaction(), splitAddress('a@b.test'))).toMatchObject({ kind: 'defer', code: 451 });
    const errors = records.filter((r) => r.level === 50);
    expect(errors.map((r) => r.plugin)).toEqual(['broken', 'broken', 'broken']);
    expect(String(errors[0]!.msg)).toContain('database down');
    await cleanup();
  });

  it('refuses a tap result that is not a verdict', async () => {
    const p = definePlugin({ name: 'sloppy', register: (ctx) => void ctx.hooks.data.tapPromise(ctx.name, async () => 'ok' as never) });
    const { server, cleanup } = await serverWith([p]);
    const { bufferSource, Message, MailparserMessageParser } = await import('./message-imports.js');
    const message = new Message(bufferSource('Subject: x\n\nbody\n'), new MailparserMessageParser());
    expect(await server.hooks.data.promise(transaction(), message)).toMatchObject({ kind: 'defer', code: 451 });
    await cleanup();
  });
});

describe('delivery hooks', () => {
  it('defer a delivery when the deliver tap throws, and let route fall through to the next tap', async () => {
    const p = definePlugin({
      name: 'flaky',
      register(ctx) {
        ctx.hooks.deliver.tapPromise(ctx.name, async () => {
          throw new Error('disk on fire');
        });
        ctx.hooks.route.tapPromise(ctx.name, async () => {
          throw new Error('lookup failed');
        });
        ctx.hooks.route.tapPromise({ name: 'fallback', stage: Stage.LATE }, async (req) => ({ channel: 'remote', recipient: req.recipient, address: req.recipient }));
      },
    });
    const { server, cleanup } = await serverWith([p]);
    const route = await server.hooks.route.promise({ messageId: '1', sender: '', recipient: 'a@b.test' });
    expect(route).toEqual({ channel: 'remote', recipient: 'a@b.test', address: 'a@b.test' });
    const report = await server.hooks.deliver.promise({} as never);
    expect(report).toMatchObject({ kind: 'deferral' });
    expect((report as { text: string }).text).toContain('disk on fire');
    await cleanup();
  });

  it('keep running observers after one fails', async () => {
    const seen: string[] = [];
    const p = definePlugin({
      name: 'observers',
      register(ctx) {
        ctx.hooks.clean.tapPromise('one', async () => {
          throw new Error('boom');
        });
        ctx.hooks.clean.tapPromise('two', async (info) => void seen.push(info.messageId));
      },
    });
    const { server, cleanup } = await serverWith([p]);
    await server.hooks.clean.promise({ messageId: 'm1', sender: '', results: [] });
    expect(seen).toEqual(['m1']);
    await cleanup();
  });
});

describe('lifecycle', () => {
  it('runs init, start, reload and stop in order', async () => {
    const calls: string[] = [];
    const p = definePlugin({
      name: 'life',
      register(ctx) {
        for (const h of ['init', 'start', 'reload', 'stop'] as const) ctx.hooks[h].tapPromise(ctx.name, async () => void calls.push(h));
      },
    });
    const { server, cleanup } = await serverWith([p]);
    await server.reload();
    await cleanup();
    expect(calls).toEqual(['init', 'start', 'reload', 'stop']);
  });

  it('fails start when a start tap throws and still runs stop taps', async () => {
    const calls: string[] = [];
    const p = definePlugin({
      name: 'unlucky',
      register(ctx) {
        ctx.hooks.start.tapPromise(ctx.name, async () => {
          throw new Error('port in use');
        });
        ctx.hooks.stop.tapPromise(ctx.name, async () => void calls.push('stop'));
      },
    });
    const { root, cleanup } = await tempRoot();
    const server = createServer({ root, plugins: [p], log: { level: 'silent' } });
    await expect(server.start()).rejects.toThrow('port in use');
    expect(server.state).toBe('failed');
    expect(calls).toEqual(['stop']);
    await cleanup();
  });
});
