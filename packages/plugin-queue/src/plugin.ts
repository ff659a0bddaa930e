import { Readable } from 'node:stream';
import { definePlugin, ErrorCodes, QuailError, qmailFiles, Stage, Tokens, type Plugin } from '@quail/core';
import { DiskQueueStore } from './disk-store.js';
import { nodeQueueFs, type QueueFs } from './fs-seam.js';
import { StoreQueue, type QueueRuntime } from './queue.js';
import { routeRecipient, type RoutingControls } from './router.js';
import { Scheduler } from './scheduler.js';

export interface QueuePluginOptions {
  /** File-system calls used by the disk queue (tests inject faults here). */
  fs?: QueueFs;
  /** How long stop waits for running deliveries before aborting them; default 60 s. */
  stopTimeoutMs?: number;
}

const controlFiles = {
  envnoathost: qmailFiles.envnoathost,
  percenthack: qmailFiles.percenthack,
  locals: qmailFiles.locals,
  virtualdomains: qmailFiles.virtualdomains,
  concurrencylocal: qmailFiles.concurrencylocal,
  concurrencyremote: qmailFiles.concurrencyremote,
  queuelifetime: qmailFiles.queuelifetime,
  bouncefrom: qmailFiles.bouncefrom,
  bouncehost: qmailFiles.bouncehost,
  doublebounceto: qmailFiles.doublebounceto,
  doublebouncehost: qmailFiles.doublebouncehost,
};

/** The `queue` plugin: qmail-queue, qmail-send and qmail-clean over `<root>/queue/`. */
export function queuePlugin(options: QueuePluginOptions = {}): Plugin {
  return definePlugin({
    name: 'queue',
    version: '0.1.0',
    description: 'durable on-disk queue and delivery scheduler (qmail-queue, qmail-send, qmail-clean)',
    control: controlFiles,
    provides: [Tokens.Queue],
    register(ctx) {
      let runtime: QueueRuntime | undefined;
      const queue = new StoreQueue(() => {
        if (!runtime) throw new QuailError(ErrorCodes.STATE, 'the queue is not open yet (the server has not been initialised)');
        return runtime;
      });
      const routing = (): RoutingControls => ({ envnoathost: ctx.config.envnoathost, locals: ctx.config.locals, percenthack: ctx.config.percenthack ?? [], virtualdomains: ctx.config.virtualdomains ?? {} });
      ctx.provide(Tokens.Queue, queue);

      ctx.hooks.route.tapPromise({ name: ctx.name, stage: Stage.LATE }, async (req) => routeRecipient(req.recipient, routing()));

      ctx.hooks.init.tapPromise(ctx.name, async () => {
        const clock = ctx.resolve(Tokens.Clock);
        const parser = ctx.resolve(Tokens.MessageParser);
        const store = new DiskQueueStore({ root: ctx.root, fs: options.fs ?? nodeQueueFs, parser, now: () => clock.now(), log: ctx.log });
        const scheduler = new Scheduler({
          store,
          hooks: ctx.hooks,
          clock,
          parser,
          log: ctx.log,
          controls: () => ctx.config,
          route: async (recipient, sender, messageId) =>
            (await ctx.hooks.route.promise({ messageId, sender, recipient })) ?? routeRecipient(recipient, routing()),
          injectBounce: async (plan, head, original) => {
            async function* body() {
              yield Buffer.from(head);
              yield* original.stream();
            }
            return queue.enqueue({ sender: plan.sender, recipients: [plan.recipient] }, Readable.from(body()), { kind: 'bounce' });
          },
          stopTimeoutMs: options.stopTimeoutMs ?? 60_000,
        });
        runtime = { store, scheduler, opened: store.open() };
        await runtime.opened;
      });
      ctx.hooks.start.tapPromise(ctx.name, async () => {
        await runtime?.scheduler.start();
      });
      ctx.hooks.reload.tapPromise(ctx.name, async () => runtime?.scheduler.reconsider());
      ctx.hooks.stop.tapPromise(ctx.name, async () => runtime?.scheduler.stop());
    },
  });
}
