import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createServer, definePlugin, Tokens, type Delivery, type DeliveryReport, type Plugin, type Queue, type QuailServer } from '@quail/core';
import { ManualClock, tempRoot } from '@quail/core/testing';
import { queuePlugin, type QueuePluginOptions } from '@quail/plugin-queue';

export interface Harness {
  root: string;
  clock: ManualClock;
  server: QuailServer;
  queue: Queue;
  logs: string[];
  deliveries: Array<{ delivery: Delivery; at: number; body: string }>;
  restart(): Promise<void>;
  cleanup(): Promise<void>;
}

export type DeliverFn = (d: Delivery, body: string) => DeliveryReport | undefined | Promise<DeliveryReport | undefined>;

export const CONTROL = { me: 'mx.example.com', locals: 'mx.example.com\nexample.com\n' };

/** A server with the queue plugin, a fixture deliver tap and a ManualClock; every log line is kept. */
export async function harness(deliver: DeliverFn, options: { control?: Record<string, string>; queue?: QueuePluginOptions; root?: string; clockStart?: number } = {}): Promise<Harness> {
  const made = options.root ? { root: options.root, cleanup: async () => undefined } : await tempRoot({ ...CONTROL, ...options.control });
  const clock = new ManualClock(options.clockStart);
  const logs: string[] = [];
  const deliveries: Harness['deliveries'] = [];
  const fixture: Plugin = definePlugin({
    name: 'fixture-deliver',
    register(ctx) {
      ctx.hooks.deliver.tapPromise(ctx.name, async (d) => {
        const chunks: Buffer[] = [];
        for await (const c of d.message.stream()) chunks.push(c as Buffer);
        const body = Buffer.concat(chunks).toString('utf8');
        deliveries.push({ delivery: d, at: clock.now(), body });
        return deliver(d, body);
      });
    },
  });
  const make = () =>
    createServer({
      root: made.root,
      plugins: [queuePlugin(options.queue), fixture],
      log: { level: 'info', format: 'json', write: (line) => logs.push(String(JSON.parse(line).msg)) },
      services: [[Tokens.Clock, clock]],
    });
  const h: Harness = {
    root: made.root,
    clock,
    server: make(),
    queue: undefined as unknown as Queue,
    logs,
    deliveries,
    async restart() {
      await h.server.stop();
      h.server = make();
      await h.server.start();
      h.queue = h.server.resolve(Tokens.Queue);
    },
    async cleanup() {
      if (h.server.state === 'running') await h.server.stop();
      await made.cleanup();
    },
  };
  await h.server.start();
  h.queue = h.server.resolve(Tokens.Queue);
  return h;
}

/** Every file under `<root>/queue/` except the delivery lock, relative, sorted. */
export async function queueFiles(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string, rel: string) => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      if (e.isDirectory()) await walk(join(dir, e.name), `${rel}${e.name}/`);
      else if (`${rel}${e.name}` !== 'lock/sendmutex') out.push(`${rel}${e.name}`);
    }
  };
  await walk(join(root, 'queue'), '');
  return out.sort();
}

export async function listAll(queue: Queue) {
  const all = [];
  for await (const m of queue.list()) all.push(m);
  return all;
}
