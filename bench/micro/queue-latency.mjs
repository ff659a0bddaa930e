// plugin-queue's figures (issue 4), in one process: enqueue throughput with
// fsync (queue paused, so only acceptance is timed) and enqueue-to-delivered
// latency with a local Maildir delivery (queue + vpopmail + local + maildir).
// Latency runs two ways: one message at a time (each waits for its delivery),
// and a burst enqueued by 20 concurrent writers. Prints JSON over IPC.
import { join } from 'node:path';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { importPackage, addBenchDomain } from '../lib/targets.mjs';
import { loadPlugin } from '../lib/plugins.mjs';
import { percentile } from '../lib/stats.mjs';

const [quick] = process.argv.slice(2);
const core = await importPackage('core');
const body = `From: a@example.org\nTo: user@bench.test\nSubject: latency\n\n${'x'.repeat(72).concat('\n').repeat(27)}`;
const origin = { kind: 'local', uid: 0 };

async function withServer(plugins, fn) {
  const root = await mkdtemp(join(tmpdir(), 'quail-bench-micro-'));
  try {
    if (plugins.includes('vpopmail')) await addBenchDomain(root);
    const loaded = [];
    for (const p of plugins) loaded.push(await loadPlugin(p));
    const server = core.createServer({ root, plugins: loaded, log: { level: 'warn' } });
    await server.start();
    try {
      return await fn(server, server.resolve(core.Tokens.Queue));
    } finally {
      await server.stop();
    }
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

const out = {};
const nEnqueue = quick ? 500 : 3000;
await withServer(['queue'], async (server, queue) => {
  queue.pause();
  for (const c of [1, 20]) {
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: c }, async () => {
        while (next++ < nEnqueue) await queue.enqueue({ sender: 'a@example.org', recipients: ['user@remote.example'] }, body, origin);
      }),
    );
    out[`enqueue c=${c}`] = { msgsPerSec: nEnqueue / ((performance.now() - t0) / 1000) };
  }
});

const nLatency = quick ? 200 : 1000;
await withServer(['queue', 'vpopmail', 'local', 'maildir'], async (server, queue) => {
  // message id -> waiter; deliveries that finish before enqueue returned the id wait in `early`
  const waiting = new Map();
  const early = new Map();
  server.hooks.delivered.tapPromise('bench', async (delivery) => {
    const at = performance.now();
    const w = waiting.get(delivery.messageId);
    if (w) w(at);
    else early.set(delivery.messageId, at);
  });
  /** Enqueues one message; resolves with ms from the enqueue call to its delivered hook. */
  const tracked = async () => {
    const t0 = performance.now();
    const receipt = await queue.enqueue({ sender: 'a@example.org', recipients: ['user@bench.test'] }, body, origin);
    const at = early.get(receipt.id) ?? (await new Promise((resolve) => waiting.set(receipt.id, resolve)));
    early.delete(receipt.id);
    waiting.delete(receipt.id);
    return at - t0;
  };
  const serial = [];
  for (let i = 0; i < nLatency; i++) serial.push(await tracked());
  out['latency, one at a time'] = { p50Ms: percentile(serial, 50), p99Ms: percentile(serial, 99), messages: serial.length };
  const burst = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: 20 }, async () => {
      while (next++ < nLatency) burst.push(await tracked());
    }),
  );
  out['latency, 20 concurrent writers'] = { p50Ms: percentile(burst, 50), p99Ms: percentile(burst, 99), messages: burst.length };
});

process.send(out);
