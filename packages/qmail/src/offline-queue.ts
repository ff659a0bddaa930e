import { QuailError, ErrorCodes, Stage, Tokens, createServer, definePlugin, type Queue } from '@quail/core';
import { presetPlugin } from './preset.js';

/**
 * Keeps an offline queue from delivering: it pauses the Queue before the queue
 * plugin's own start tap runs, so the scheduler never starts a delivery here;
 * the daemon delivers when it runs.
 */
const hold = definePlugin({
  name: 'qmail-offline-hold',
  requires: [Tokens.Queue],
  register(ctx) {
    ctx.hooks.start.tapPromise({ name: ctx.name, stage: Stage.EARLY }, async () => {
      ctx.resolve(Tokens.Queue).pause();
    });
  },
});

/**
 * Opens the root's on-disk queue in this process, with deliveries held, for
 * qmail-inject/qmail-qread work while no daemon runs; closes it afterwards.
 */
export async function withOfflineQueue<T>(root: string, fn: (queue: Queue) => Promise<T>): Promise<T> {
  const server = createServer({ root, plugins: [presetPlugin('@quail/plugin-queue'), hold], log: { level: 'silent' } });
  try {
    await server.start();
  } catch (err) {
    throw new QuailError(ErrorCodes.TEMPORARY, `cannot open the queue in ${root}: ${(err as Error).message}`, { cause: err });
  }
  try {
    return await fn(server.resolve(Tokens.Queue));
  } finally {
    await server.stop();
  }
}
