import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { filesUnder, maildirTokens, sendMail, sleep } from './support/clients.js';
import { Daemon, DOMAIN, killAll, makeRoot, quail } from './support/daemon.js';
import { recordMetrics } from './support/metrics.js';
import { scaled } from './support/scale.js';

const USERS = ['u1', 'u2', 'u3', 'u4'];
const KILLS = scaled(50);
const CLIENTS = 4;

afterAll(killAll);

/** Queue files that must not be there once everything is delivered and the daemon stopped cleanly. */
async function queueFiles(root: string): Promise<string[]> {
  const files = await filesUnder(join(root, 'queue'));
  return files.filter((f) => !/\/(lock|pid|\.lock)$/.test(f));
}

interface CrashLoopResult {
  acknowledged: number;
  lost: string[];
  duplicates: number;
  queueLeftovers: string[];
  maildirTmp: string[];
  graceful: boolean;
}

/** The whole run: load, kills, restarts, a clean run to the end, then the counts. */
async function crashLoop(root: string): Promise<CrashLoopResult> {
  let daemon = await Daemon.start(root);
  let port = daemon.ports!.smtp;
  let restarting = false;
  let stopClients = false;
  const acknowledged = new Map<string, string[]>();
  let attempts = 0;
  let refused = 0;
  let serial = 0;

  const client = async (n: number) => {
    while (!stopClients) {
      if (restarting) {
        await sleep(50);
        continue;
      }
      const to = [USERS[serial % USERS.length]!, ...(serial % 5 === 0 ? [USERS[(serial + 1) % USERS.length]!] : [])];
      const token = `c${n}-m${serial++}`;
      attempts++;
      const result = await sendMail({ port, from: 'loader@client.example', to: to.map((u) => `${u}@${DOMAIN}`), token, timeoutMs: 5000 });
      if (result.acknowledged) acknowledged.set(token, to);
      else refused++;
    }
  };

  const clients = Array.from({ length: CLIENTS }, (_, n) => client(n));
  const started = Date.now();
  try {
    for (let kill = 0; kill < KILLS; kill++) {
      await sleep(100 + Math.floor(Math.random() * 1200));
      restarting = true;
      daemon.killGroup('SIGKILL');
      await daemon.exited;
      daemon = await Daemon.start(root);
      port = daemon.ports!.smtp;
      restarting = false;
    }
    await sleep(1000);
  } finally {
    stopClients = true;
    await Promise.all(clients);
  }

  // A clean run: let the last daemon deliver everything, then stop it gracefully.
  const deadline = Date.now() + 60_000;
  const delivered = new Map<string, number>();
  for (;;) {
    delivered.clear();
    for (const user of USERS) for (const token of await maildirTokens(root, user)) delivered.set(`${token}/${user}`, (delivered.get(`${token}/${user}`) ?? 0) + 1);
    const missing = [...acknowledged].flatMap(([token, to]) => to.filter((u) => !delivered.has(`${token}/${u}`)));
    const queue = await quail(['queue', '--root', root]);
    if ((missing.length === 0 && /messages in queue: 0\b/.test(queue)) || Date.now() > deadline) break;
    await sleep(500);
  }
  const stop = await daemon.stop(30_000);

  const expectedCopies = [...acknowledged].flatMap(([token, to]) => to.map((u) => `${token}/${u}`));
  const lost = expectedCopies.filter((k) => !delivered.has(k));
  const duplicates = [...delivered.values()].filter((n) => n > 1).reduce((sum, n) => sum + n - 1, 0);
  const unacknowledgedDelivered = [...delivered.keys()].filter((k) => !acknowledged.has(k.split('/')[0]!)).length;
  const queueLeftovers = await queueFiles(root);
  const maildirTmp = (await Promise.all(USERS.map((u) => filesUnder(join(root, 'domains', DOMAIN, u, 'Maildir', 'tmp'))))).flat();
  await recordMetrics('crash-loop', {
    kills: KILLS,
    clients: CLIENTS,
    seconds: Math.round((Date.now() - started) / 1000),
    attempts,
    acknowledgedMessages: acknowledged.size,
    acknowledgedCopies: expectedCopies.length,
    deliveredCopies: [...delivered.values()].reduce((a, b) => a + b, 0),
    lost: lost.length,
    duplicates,
    unacknowledgedDelivered,
    refusedOrBroken: refused,
    queueLeftovers: queueLeftovers.length,
    maildirTmpLeftovers: maildirTmp.length,
    cleanStop: stop,
  });
  return { acknowledged: acknowledged.size, lost, duplicates, queueLeftovers, maildirTmp, graceful: stop.graceful };
}

describe(`crash loop: ${KILLS} SIGKILLs under SMTP load from ${CLIENTS} clients, each followed by a restart`, () => {
  let result: CrashLoopResult;
  let cleanup: (() => Promise<void>) | undefined;
  beforeAll(async () => {
    const made = await makeRoot({ users: Object.fromEntries(USERS.map((u) => [u, `pw-${u}-secret`])) });
    cleanup = made.cleanup;
    result = await crashLoop(made.root);
  }, 600_000);
  afterAll(async () => {
    await killAll();
    await cleanup?.();
  });

  it('the clients got acknowledgements throughout', () => {
    expect(result.acknowledged).toBeGreaterThan(KILLS);
  });

  it('no acknowledged message is lost: every 250 after DATA ends up in each recipient Maildir', () => {
    expect(result.lost).toEqual([]);
  });

  it('the clean run after the kills stops gracefully and leaves no queue files', () => {
    expect(result.graceful).toBe(true);
    expect(result.queueLeftovers).toEqual([]);
  });

  it('no message is delivered twice (target: zero duplicates)', () => {
    expect(result.duplicates).toBe(0);
  });

  it('no Maildir tmp/ files are left behind by deliveries the kills interrupted', () => {
    expect(result.maildirTmp).toEqual([]);
  });
});
