// Runs one quail server in its own process, from the built packages, for the
// harness to measure (CPU and RSS of this process). The parent forks it with
// BENCH_QUAIL={"root":..., "plugins":[...], "pauseQueue":bool, "logLevel":...}
// and drives it over IPC: enqueue, resume, idle, stat, stop.
import { core, loadPlugin } from './plugins.mjs';

const options = JSON.parse(process.env.BENCH_QUAIL ?? '{}');

const plugins = [];
for (const name of options.plugins) plugins.push(await loadPlugin(name));
const server = core.createServer({ root: options.root, plugins, log: { level: options.logLevel ?? 'info' } });
await server.start();
const queue = server.container.isRegistered(core.Tokens.Queue, true) ? server.resolve(core.Tokens.Queue) : undefined;
if (options.pauseQueue) queue?.pause();

function body(size, n) {
  const head = `From: bench <sender@example.org>\nTo: user <user@bench.test>\nSubject: bench ${n}\nMessage-ID: <${n}.${process.pid}@bench>\n\n`;
  const line = 'Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod.\n';
  let text = head;
  while (text.length < size) text += line;
  return text.slice(0, size - 1) + '\n';
}

const commands = {
  async enqueue({ count, size, sender, recipients, concurrency = 1 }) {
    const data = body(size, 0);
    let next = 0;
    const t0 = performance.now();
    const worker = async () => {
      while (next < count) {
        next++;
        await queue.enqueue({ sender, recipients }, data, { kind: 'local', uid: process.getuid?.() ?? 0 });
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    return { ms: performance.now() - t0 };
  },
  async pause() {
    queue.pause();
  },
  async resume() {
    queue.resume();
  },
  async flush() {
    await queue.flush();
  },
  async idle() {
    const t0 = performance.now();
    await queue.idle();
    return { ms: performance.now() - t0 };
  },
  async stat() {
    return queue.stat();
  },
  /** Writes a V8 heap snapshot (for bench/heap-sessions.mjs); resolves with its path. */
  async heapSnapshot({ path }) {
    globalThis.gc?.();
    const { writeHeapSnapshot } = await import('node:v8');
    return writeHeapSnapshot(path);
  },
  async stop() {
    await server.stop();
    setImmediate(() => process.exit(0));
  },
};

process.on('message', async (msg) => {
  try {
    const result = await commands[msg.cmd](msg.args ?? {});
    process.send({ id: msg.id, ok: true, result });
  } catch (err) {
    process.send({ id: msg.id, ok: false, error: String(err?.stack ?? err) });
  }
});
// the harness asks for a full collection before it reads RSS (run with --expose-gc)
process.on('SIGUSR2', () => globalThis.gc?.());
process.on('SIGTERM', () => {
  server.stop().finally(() => process.exit(0));
});

process.send({ type: 'ready', startMs: performance.now(), memory: process.memoryUsage() });
