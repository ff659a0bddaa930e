// Load generators: Postfix's smtp-source for SMTP, the idle-session holder.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run, forkProcess, stopProcess } from './proc.mjs';
import { HOST } from './net.mjs';

const here = dirname(fileURLToPath(import.meta.url));
export const SMTP_SOURCE = '/usr/sbin/smtp-source';
export const SMTP_SINK = '/usr/sbin/smtp-sink';

/**
 * Sends `count` messages of `size` payload bytes over `concurrency` sessions,
 * one new connection per message (smtp-source's default; -d would reuse).
 * Resolves with the wall time in ms; rejects when smtp-source reports an error.
 */
export async function smtpSource(port, { count, concurrency, size, recipient = 'user@bench.test', timeoutMs = 600_000 }) {
  const args = ['-l', String(size), '-m', String(count), '-s', String(concurrency), '-M', 'client.bench.localhost', '-f', 'sender@example.org', '-t', recipient, `${HOST}:${port}`];
  const r = await run(SMTP_SOURCE, args, { timeoutMs });
  if (r.code !== 0) throw new Error(`smtp-source exited ${r.code ?? r.signal}: ${r.stderr.trim().slice(-500)}`);
  return r.ms;
}

/** Opens `count` sessions after EHLO and keeps them; resolves with a handle to close them. */
export async function holdIdleSessions(port, count, log) {
  const child = forkProcess('idle-sessions', join(here, 'idle-sessions.mjs'), [String(port), String(count)], { log });
  const msg = await new Promise((resolve, reject) => {
    child.once('message', resolve);
    child.once('exit', (code) => reject(new Error(`idle-session holder exited ${code}`)));
  });
  if (msg.type !== 'ready') {
    await stopProcess(child, 1000);
    throw new Error(`idle sessions: ${msg.error}`);
  }
  return {
    sessions: msg.sessions,
    async close() {
      child.send({ cmd: 'close' });
      await stopProcess(child, 3000);
    },
  };
}
