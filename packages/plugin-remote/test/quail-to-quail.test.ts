import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Tokens, createServer, type QuailServer } from '@quail/core';
import { tempRoot } from '@quail/core/testing';
import queue from '@quail/plugin-queue';
import smtpd, { smtpdListeners, spoolQueuePlugin } from '@quail/plugin-smtpd';
import remote from '../src/index.js';
import { BASE_CONTROL } from './helpers.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function started(files: Record<string, string>, plugins: Parameters<typeof createServer>[0]['plugins']): Promise<{ server: QuailServer; root: string }> {
  const { root, cleanup } = await tempRoot(files);
  const server = createServer({ root, plugins, log: { level: 'silent' } });
  await server.start();
  cleanups.push(async () => {
    if (server.state === 'running') await server.stop();
    await cleanup();
  });
  return { server, root };
}

describe('quail to quail', () => {
  it("a message queued on one quail arrives in the other's queue through plugin-queue, plugin-remote and plugin-smtpd", async () => {
    const receiver = await started(
      { me: 'mx.peer.test', rcpthosts: 'peer.test\n', 'smtpd.listen': '127.0.0.1:0\n' },
      [smtpd, spoolQueuePlugin({ dir: 'spool' })],
    );
    const port = smtpdListeners(receiver.server).find((l) => l.kind === 'smtp')!.port;
    const sender = await started({ ...BASE_CONTROL, smtproutes: `peer.test:127.0.0.1:${port}\n` }, [queue, remote]);
    const q = sender.server.resolve(Tokens.Queue);
    const body = 'From: ann@quail.test\nTo: bob@peer.test\nSubject: across\n\n.a line with a leading dot\nend\n';
    await q.enqueue({ sender: 'ann@quail.test', recipients: ['bob@peer.test', 'cat@peer.test'] }, body, { kind: 'local', uid: 0 });

    const spool = join(receiver.root, 'spool');
    // The spool renames the .msg file into place last: a .msg file is a committed message.
    const committed = async () => (await readdir(spool).catch(() => [] as string[])).filter((f) => f.endsWith('.msg'));
    let names: string[] = [];
    for (const until = Date.now() + 15_000; names.length === 0 && Date.now() < until; ) {
      names = await committed();
      if (names.length === 0) await new Promise((r) => setTimeout(r, 50));
    }
    expect(names).toHaveLength(1);
    const id = names[0]!.slice(0, -4);
    const envelope = JSON.parse(await readFile(join(spool, `${id}.env`), 'utf8')) as { sender: string; recipients: string[] };
    expect(envelope).toEqual({ sender: 'ann@quail.test', recipients: ['bob@peer.test', 'cat@peer.test'] });
    const stored = await readFile(join(spool, `${id}.msg`), 'latin1');
    // Stored with bare LF again on the other side: its Received line, then the sender queue's line, then the message.
    expect(stored).toMatch(/^Received: from \S+ \(HELO quail\.test\) \(127\.0\.0\.1\)/);
    expect(stored).toContain('Received: (qmail ');
    expect(stored.endsWith(body)).toBe(true);
  });
});
