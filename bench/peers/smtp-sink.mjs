// Postfix's smtp-sink: accepts and discards; the protocol ceiling.
import { join } from 'node:path';
import { startProcess, stopProcess } from '../lib/proc.mjs';
import { freePort, waitForGreeting, HOST } from '../lib/net.mjs';
import { SMTP_SINK } from '../lib/load.mjs';

export async function startSink(dir, { maxSessions = 4000 } = {}) {
  const port = await freePort();
  const args = ['-u', 'nobody', '-m', String(maxSessions), '-h', 'sink.bench.localhost', `${HOST}:${port}`, '1024'];
  const child = startProcess('smtp-sink', SMTP_SINK, args, { log: join(dir, 'smtp-sink.out') });
  await waitForGreeting(port, '220', { child });
  return {
    name: 'smtp-sink',
    port,
    pid: child.pid,
    child,
    dir,
    async stop() {
      await stopProcess(child, 2000);
    },
  };
}
