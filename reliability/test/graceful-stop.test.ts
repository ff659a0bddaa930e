import { join } from 'node:path';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { filesUnder, maildirTokens, sendMail, sleep } from './support/clients.js';
import { Daemon, DOMAIN, killAll, makeRoot, quail } from './support/daemon.js';
import { recordMetrics } from './support/metrics.js';

const USERS = ['u1', 'u2'];
const STOP_TIMEOUT_S = 10;

afterAll(killAll);

describe('graceful stop: SIGTERM under SMTP load', () => {
  it('exits within --stop-timeout, and every acknowledged message is delivered (now or after the next start)', async () => {
    const { root, cleanup } = await makeRoot({ users: Object.fromEntries(USERS.map((u) => [u, `pw-${u}-secret`])) });
    onTestFinished(cleanup);
    let daemon = await Daemon.start(root, { args: ['--stop-timeout', String(STOP_TIMEOUT_S)] });
    const port = daemon.ports!.smtp;
    const acknowledged = new Map<string, string>();
    let stopClients = false;
    let serial = 0;
    let signalledAt = Infinity;
    const inFlight: Array<{ acknowledged: boolean; response: string }> = [];
    const client = async (n: number) => {
      while (!stopClients) {
        const user = USERS[serial % USERS.length]!;
        const token = `g${n}-m${serial++}`;
        // a large body keeps DATA in flight when the signal arrives
        const began = Date.now();
        const result = await sendMail({ port, from: 'loader@client.example', to: [`${user}@${DOMAIN}`], token, body: `${'x'.repeat(76)}\n`.repeat(2000), timeoutMs: 5000 });
        if (began < signalledAt && Date.now() >= signalledAt) inFlight.push(result);
        if (result.acknowledged) acknowledged.set(token, user);
        else await sleep(20);
      }
    };
    const clients = Array.from({ length: 6 }, (_, n) => client(n));
    await sleep(2500);
    signalledAt = Date.now();
    const stop = await daemon.stop((STOP_TIMEOUT_S + 20) * 1000);
    const acknowledgedAtStop = acknowledged.size;
    stopClients = true;
    await Promise.all(clients);

    // whatever was acknowledged but not yet delivered is on disk: the next start delivers it
    daemon = await Daemon.start(root);
    const deadline = Date.now() + 60_000;
    let lost: string[] = [];
    for (;;) {
      const delivered = new Set<string>();
      for (const user of USERS) for (const token of await maildirTokens(root, user)) delivered.add(token);
      lost = [...acknowledged.keys()].filter((t) => !delivered.has(t));
      if (lost.length === 0 || Date.now() > deadline) break;
      await sleep(500);
    }
    await daemon.stop();
    await recordMetrics('graceful-stop', {
      acknowledged: acknowledged.size,
      acknowledgedBeforeStop: acknowledgedAtStop,
      lost: lost.length,
      inFlightAtSignal: inFlight.length,
      inFlightAcknowledged: inFlight.filter((r) => r.acknowledged).length,
      inFlightAnswers: [...new Set(inFlight.map((r) => r.response.slice(0, 80)))],
      stopMs: stop.ms,
      stopTimeoutS: STOP_TIMEOUT_S,
      exitCode: daemon.exitCode,
      graceful: stop.graceful,
    });
    expect(acknowledged.size).toBeGreaterThan(0);
    expect(stop.graceful).toBe(true);
    expect(stop.ms).toBeLessThan((STOP_TIMEOUT_S + 5) * 1000);
    expect(lost).toEqual([]);
    // a transaction under way finishes (250); one not yet in DATA is told to come back (421), none is cut off
    for (const r of inFlight) expect(r.response).toMatch(/^250 ok|\b421 /);
    expect((await filesUnder(join(root, 'queue'))).filter((f) => !/lock$/.test(f))).toEqual([]);
  }, 180_000);

  it('quail qstat answers while the daemon runs (qmail-qstat through the control socket)', async () => {
    const { root, cleanup } = await makeRoot();
    const daemon = await Daemon.start(root);
    try {
      const offline = await quail(['queue', '--root', root]);
      expect(offline).toMatch(/messages in queue: 0/);
      await expect(quail(['qstat', '--root', root])).resolves.toMatch(/^messages in queue: 0\nmessages in queue but not yet preprocessed: 0\n$/);
    } finally {
      await daemon.stop();
      await cleanup();
    }
  }, 60_000);
});
