import { afterEach, describe, expect, it } from 'vitest';
import { deferral, success, type Delivery } from '@quail/core';
import { formatQread } from '@quail/plugin-queue';
import { harness, listAll, queueFiles, type Harness } from './helpers.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.cleanup();
  h = undefined;
});

const S = 1000;

/** Seconds after the first attempt at which `recipient` was tried. */
function attemptTimes(recipient: string): number[] {
  const all = h!.deliveries.filter((d) => d.delivery.recipients.some((r) => r.recipient === recipient));
  return all.map((d) => (d.at - all[0]!.at) / S);
}

/** Advances the ManualClock second by second up to `seconds`, letting the queue settle at each due time. */
async function runFor(seconds: number, step = 100): Promise<void> {
  for (let t = 0; t < seconds; t += step) {
    await h!.clock.advance(step * S);
    await h!.queue.idle();
  }
}

describe('retries (qmail-send schedule)', () => {
  it('retries local and remote deferrals at (10k)^2 and (20k)^2 seconds after birth', async () => {
    h = await harness(() => deferral('try later'));
    await h.queue.enqueue({ sender: 'a@example.org', recipients: ['joe@example.com', 'bob@remote.example'] }, 'x\n', { kind: 'network', remoteAddress: '192.0.2.1' });
    await h.queue.idle();
    await runFor(6400);
    expect(attemptTimes('joe@example.com')).toEqual([0, 100, 400, 900, 1600, 2500, 3600, 4900, 6400]);
    expect(attemptTimes('bob@remote.example')).toEqual([0, 400, 1600, 3600, 6400]);
    expect(h.deliveries.map((d) => d.delivery.attempt).filter((_, i) => h!.deliveries[i]!.delivery.channel === 'remote')).toEqual([1, 2, 3, 4, 5]);
    expect(h.logs).toContain('delivery 1: deferral: try_later/');
    const [listed] = await listAll(h.queue);
    expect(listed!.recipients).toEqual([
      expect.objectContaining({ recipient: 'joe@example.com', channel: 'local', state: 'deferred', attempts: 9, nextAttempt: new Date(listed!.queuedAt.getTime() + 8100 * S), lastText: 'try later\n' }),
      expect.objectContaining({ recipient: 'bob@remote.example', channel: 'remote', state: 'deferred', attempts: 5, nextAttempt: new Date(listed!.queuedAt.getTime() + 10000 * S) }),
    ]);
  });

  it('keeps the next attempt time across a restart', async () => {
    h = await harness(() => deferral('later'));
    await h.queue.enqueue({ sender: 'a@example.org', recipients: ['bob@remote.example'] }, 'x\n', { kind: 'bounce' });
    await h.queue.idle();
    expect(h.deliveries).toHaveLength(1);
    await h.restart();
    await h.queue.idle();
    expect(h.deliveries).toHaveLength(1);
    await h.clock.advance(399 * S);
    await h.queue.idle();
    expect(h.deliveries).toHaveLength(1);
    await h.clock.advance(1 * S);
    await h.queue.idle();
    expect(h.deliveries).toHaveLength(2);
    expect(h.deliveries[1]!.delivery.attempt).toBe(2);
  });

  it('after queuelifetime makes the last temporary failure permanent and bounces it', async () => {
    h = await harness((d) => (d.sender === '' ? success('ok') : deferral('Sorry, I wasn\'t able to establish an SMTP connection. (#4.4.1)')), {
      control: { queuelifetime: '1000' },
    });
    const r = await h.queue.enqueue({ sender: 'alice@example.org', recipients: ['bob@remote.example'] }, 'x\n', { kind: 'bounce' });
    await h.queue.idle();
    await runFor(1600);
    expect(attemptTimes('bob@remote.example')).toEqual([0, 400, 1600]);
    const bounce = h.deliveries.find((d) => d.delivery.sender === '')!;
    expect(bounce.body).toContain("<bob@remote.example>:\nSorry, I wasn't able to establish an SMTP connection. (#4.4.1)\nI'm not going to try again; this message has been in the queue too long.\n\n--- Below this line");
    expect(h.logs).toContain(`end msg ${r.id}`);
    expect(h.logs.some((l) => l.startsWith('delivery 3: failure: Sorry,_I_wasn\'t_able'))).toBe(true);
  });

  it('retries every deferred message at once on flush (doqueue)', async () => {
    let ok = false;
    h = await harness(() => (ok ? success('done') : deferral('later')));
    await h.queue.enqueue({ sender: 'a@example.org', recipients: ['bob@remote.example'] }, 'x\n', { kind: 'bounce' });
    await h.queue.enqueue({ sender: 'a@example.org', recipients: ['joe@example.com'] }, 'x\n', { kind: 'bounce' });
    await h.queue.idle();
    expect(h.deliveries).toHaveLength(2);
    ok = true;
    await h.queue.flush();
    await h.queue.idle();
    expect(h.deliveries).toHaveLength(4);
    expect(await queueFiles(h.root)).toEqual([]);
  });

  it('starts nothing while paused and catches up on resume', async () => {
    h = await harness(() => success('done'));
    h.queue.pause();
    await h.queue.enqueue({ sender: 'a@example.org', recipients: ['joe@example.com'] }, 'x\n', { kind: 'bounce' });
    await h.queue.idle();
    expect(h.deliveries).toHaveLength(0);
    expect(await h.queue.stat()).toMatchObject({ messages: 1, paused: true, pending: { local: 1 } });
    const listing = (await listAll(h.queue)).map(formatQread).join('');
    expect(listing).toMatch(/^1 Jan 2026 00:00:00 GMT {2}#\d+\.[0-9a-f]{10} {2}\d+ {2}<a@example\.org> \n\tlocal\tjoe@example\.com\n$/);
    h.queue.resume();
    await h.queue.idle();
    expect(h.deliveries).toHaveLength(1);
  });

  it('defers when no deliver tap takes the delivery', async () => {
    h = await harness(() => undefined);
    await h.queue.enqueue({ sender: 'a@example.org', recipients: ['x@nowhere.example'] }, 'x\n', { kind: 'bounce' });
    await h.queue.idle();
    expect(h.logs).toContain('delivery 1: deferral: Sorry,_no_delivery_plugin_handles_the_remote_channel._(#4.3.0)/');
    const [m] = await listAll(h.queue);
    expect(m!.recipients[0]!.state).toBe('deferred');
  });
});

describe('deliveries', () => {
  it('gives local deliveries one recipient and groups remote recipients by domain', async () => {
    h = await harness((d) => d.recipients.map(() => success('ok')));
    await h.queue.enqueue(
      { sender: 'a@example.org', recipients: ['one@example.com', 'x@far.example', 'two@example.com', 'y@near.example', 'Z@FAR.example'] },
      'x\n',
      { kind: 'bounce' },
    );
    await h.queue.idle();
    const shapes = h.deliveries.map((d) => `${d.delivery.channel}:${d.delivery.recipients.map((r) => r.recipient).join(',')}`).sort();
    expect(shapes).toEqual(['local:one@example.com', 'local:two@example.com', 'remote:x@far.example,Z@FAR.example', 'remote:y@near.example']);
  });

  it('fires delivered after each attempt with one result per recipient', async () => {
    h = await harness((d) => [success('first'), deferral('second')].slice(0, d.recipients.length));
    const seen: Array<[number, string[]]> = [];
    h.server.hooks.delivered.tapPromise('observer', async (d, results) => {
      seen.push([d.id, results.map((r) => `${r.kind}:${r.text}`)]);
    });
    await h.queue.enqueue({ sender: 'a@example.org', recipients: ['x@far.example', 'y@far.example'] }, 'x\n', { kind: 'bounce' });
    await h.queue.idle();
    expect(seen).toEqual([[1, ['success:first\n', 'deferral:second\n']]]);
  });

  it('keeps within concurrencylocal and concurrencyremote', async () => {
    const running = { local: 0, remote: 0 };
    const max = { local: 0, remote: 0 };
    const release: Array<() => void> = [];
    h = await harness(
      async (d) => {
        const ch = d.channel as 'local' | 'remote';
        running[ch]++;
        max[ch] = Math.max(max[ch], running[ch]);
        await new Promise<void>((r) => release.push(r));
        running[ch]--;
        return success('ok');
      },
      { control: { concurrencylocal: '3', concurrencyremote: '5' } },
    );
    for (let i = 0; i < 12; i++) {
      await h.queue.enqueue({ sender: 'a@example.org', recipients: [`l${i}@example.com`, `r${i}@remote${i}.example`] }, 'x\n', { kind: 'bounce' });
    }
    let delivered = 0;
    while (delivered < 24) {
      await new Promise((r) => setTimeout(r, 5));
      expect(running.local).toBeLessThanOrEqual(3);
      expect(running.remote).toBeLessThanOrEqual(5);
      const batch = release.splice(0);
      delivered += batch.length;
      for (const r of batch) r();
    }
    await h.queue.idle();
    expect(max).toEqual({ local: 3, remote: 5 });
    expect(h.deliveries).toHaveLength(24);
    expect(h.logs).toContain('status: local 3/3 remote 5/5');
  });

  it('on stop waits for running deliveries, then aborts them after the deadline', async () => {
    let signal: AbortSignal | undefined;
    h = await harness(
      (d: Delivery) =>
        new Promise((resolve) => {
          signal = d.signal;
          d.signal.addEventListener('abort', () => resolve(deferral('aborted by stop')));
        }),
      { queue: { stopTimeoutMs: 50 } },
    );
    await h.queue.enqueue({ sender: 'a@example.org', recipients: ['x@far.example'] }, 'x\n', { kind: 'bounce' });
    while (!signal) await new Promise((r) => setTimeout(r, 5));
    await h.server.stop();
    expect(signal.aborted).toBe(true);
    expect(h.logs).toContain('delivery 1: deferral: aborted_by_stop/');
    expect(h.logs).toContain('status: exiting');
    expect(h.clock.pending).toBe(0);
  });
});
