// Loopback helpers: free ports, waiting for a greeting, counting Maildir files.
import { createServer, connect } from 'node:net';
import { readdir } from 'node:fs/promises';
import { sleep } from './proc.mjs';

export const HOST = '127.0.0.1';

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, HOST, () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Resolves with the first line the server sends (its greeting). */
export function readGreeting(port, timeoutMs = 2000) {
  return new Promise((resolve, reject) => {
    const sock = connect(port, HOST);
    let buf = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no greeting on ${HOST}:${port}`));
    }, timeoutMs);
    sock.on('data', (d) => {
      buf += d;
      if (buf.includes('\n')) {
        clearTimeout(timer);
        sock.end('QUIT\r\n');
        resolve(buf.split('\n')[0].trim());
      }
    });
    sock.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/** Polls until something on `port` greets with `prefix`, or throws after `timeoutMs`. */
export async function waitForGreeting(port, prefix, { timeoutMs = 30_000, child } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    if (child && child.exitCode !== null) throw new Error(`process exited with ${child.exitCode} before listening on ${port}`);
    try {
      const line = await readGreeting(port);
      if (line.startsWith(prefix)) return line;
      last = new Error(`unexpected greeting on ${port}: ${line}`);
    } catch (err) {
      last = err;
    }
    await sleep(50);
  }
  throw last ?? new Error(`nothing listens on ${port}`);
}

export async function countFiles(dir) {
  try {
    return (await readdir(dir)).length;
  } catch (err) {
    if (err.code === 'ENOENT') return 0;
    throw err;
  }
}

/** Waits until `count()` reaches `target`; resolves with the time it got there (ms, hrtime). */
export async function waitForCount(count, target, { timeoutMs = 600_000, intervalMs = 5 } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const n = await count();
    if (n >= target) return performance.now();
    if (Date.now() > deadline) throw new Error(`only ${n} of ${target} after ${timeoutMs} ms`);
    await sleep(intervalMs);
  }
}
