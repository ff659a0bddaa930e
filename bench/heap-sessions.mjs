#!/usr/bin/env node
// node bench/heap-sessions.mjs [sessions]
// What an idle SMTP session costs quail, by object type: a V8 heap snapshot of
// quail (smtpd + queue) before and after N sessions are opened and held after
// EHLO, and the difference per session, largest first. Writes
// bench/results/heap-per-session.txt.
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startQuail } from './peers/quail.mjs';
import { holdIdleSessions } from './lib/load.mjs';
import { stopAll, sleep } from './lib/proc.mjs';
import { BENCH_DOMAIN } from './lib/targets.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const sessions = Number(process.argv[2] ?? 1000);

/** self size and count per "type:name" (objects by constructor) in a .heapsnapshot. */
function tally(snapshot) {
  const { node_fields: fields, node_types: [types] } = snapshot.snapshot.meta;
  const width = fields.length;
  const iType = fields.indexOf('type');
  const iName = fields.indexOf('name');
  const iSize = fields.indexOf('self_size');
  const out = new Map();
  const nodes = snapshot.nodes;
  for (let i = 0; i < nodes.length; i += width) {
    const type = types[nodes[i + iType]];
    const name = type === 'object' || type === 'native' || type === 'closure' ? snapshot.strings[nodes[i + iName]] : '';
    const key = `${type}${name ? `:${name.slice(0, 60)}` : ''}`;
    const t = out.get(key) ?? { count: 0, bytes: 0 };
    t.count++;
    t.bytes += nodes[i + iSize];
    out.set(key, t);
  }
  return out;
}

const work = await mkdtemp(join(tmpdir(), 'quail-heap-'));
try {
  const q = await startQuail(join(work, 'root'), { plugins: ['smtpd', 'queue'], smtp: true, pauseQueue: true, files: { 'control/rcpthosts': `${BENCH_DOMAIN}\n` } });
  await (await holdIdleSessions(q.port, 100, join(work, 'idle.log'))).close();
  await sleep(500);
  const before = tally(JSON.parse(await readFile(await q.request('heapSnapshot', { path: join(work, 'before.heapsnapshot') }), 'utf8')));
  const held = await holdIdleSessions(q.port, sessions, join(work, 'idle.log'));
  await sleep(500);
  const after = tally(JSON.parse(await readFile(await q.request('heapSnapshot', { path: join(work, 'after.heapsnapshot') }), 'utf8')));
  await held.close();
  await q.stop();
  const rows = [];
  let total = 0;
  for (const [key, a] of after) {
    const b = before.get(key) ?? { count: 0, bytes: 0 };
    const bytes = a.bytes - b.bytes;
    total += bytes;
    if (bytes > 0) rows.push({ key, perSession: bytes / sessions, countPerSession: (a.count - b.count) / sessions });
  }
  rows.sort((x, y) => y.perSession - x.perSession);
  const text = [
    `quail (smtpd + queue), ${sessions} idle sessions after EHLO`,
    `JS heap growth ${(total / sessions / 1024).toFixed(2)} KiB per session (live objects after a full GC; RSS per session is`,
    'measured by pnpm bench: the difference is native memory such as socket buffers and libuv handles)',
    '',
    'bytes/session  objects/session  type:constructor',
    ...rows.slice(0, 30).map((r) => `${r.perSession.toFixed(0).padStart(13)}  ${r.countPerSession.toFixed(1).padStart(15)}  ${r.key}`),
    '',
  ].join('\n');
  await mkdir(join(here, 'results'), { recursive: true });
  await writeFile(join(here, 'results', 'heap-per-session.txt'), text);
  process.stdout.write(text);
} finally {
  await stopAll();
  await rm(work, { recursive: true, force: true });
}
