import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LineClient, sleep } from './support/clients.js';
import { Daemon, DOMAIN, killAll, makeRoot, ME, quail } from './support/daemon.js';
import { recordMetrics } from './support/metrics.js';
import { SmtpPeer } from '@quail/testkit';

/** The classic relay-test recipients: each would reach victim at a foreign host if relayed. */
const RECIPIENTS = [
  '<victim@foreign.example>',
  'victim@foreign.example',
  '<victim%foreign.example@example.test>',
  '<victim%foreign.example@mx.example.test>',
  '<victim@foreign.example@example.test>',
  '<"victim@foreign.example"@example.test>',
  '<"victim%foreign.example"@example.test>',
  '<victim%foreign.example%example.test@example.test>',
  '<@example.test:victim@foreign.example>',
  '<@EXAMPLE.TEST,@mx.example.test:victim@foreign.example>',
  '<@[127.0.0.1]:victim@foreign.example>',
  '<foreign.example!victim@example.test>',
  '<foreign.example!victim>',
  '<victim@FOREIGN.EXAMPLE>',
  '<VICTIM@Foreign.Example>',
  '<victim@foreign.example.>',
  '<victim@example.test.foreign.example>',
  '<victim@foreign.example.example>',
  '<victim@[1.2.3.4]>',
  '<victim%foreign.example@[127.0.0.1]>',
  '<victim@foreign.example@[127.0.0.1]>',
  '<victim\\@foreign.example@example.test>',
  '<victim@foreign.example\\@example.test>',
  '<victim@foreign.example> NOTIFY=NEVER',
  '<victim@foreign.example:example.test>',
  '<victim@[foreign.example]>',
  '<victim@foreign.example (example.test)>',
];

const SENDERS = ['<>', '<probe@relaytest.example>', '<postmaster@example.test>', '<probe@EXAMPLE.TEST>', 'probe@relaytest.example'];

let sink: SmtpPeer;
let daemon: Daemon;
let root: string;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  sink = await SmtpPeer.start({ name: 'sink.foreign.example' });
  ({ root, cleanup } = await makeRoot({
    users: { joe: 'joe-secret-pw' },
    control: {
      smtproutes: `:[127.0.0.1]:${sink.port}\n`,
      'tcp.smtp': '127.0.0.3:allow,RELAYCLIENT=""\n:allow\n',
    },
  }));
  daemon = await Daemon.start(root);
}, 60_000);

afterAll(async () => {
  await daemon?.stop();
  await killAll();
  await sink?.close();
  await cleanup?.();
});

/** One transaction; returns the RCPT answer and, when RCPT was accepted, the answer after DATA. */
async function attempt(options: { sender: string; recipient: string; from?: string; auth?: string; token: string }): Promise<{ rcpt: number; data?: number }> {
  const c = await LineClient.connect(daemon.ports!.smtp, options.from ? { localAddress: options.from } : {});
  try {
    await c.reply();
    await c.command('EHLO relaytest.example');
    if (options.auth) {
      const auth = await c.command(`AUTH PLAIN ${Buffer.from(`\0${options.auth}`).toString('base64')}`);
      if (auth.code !== 235) throw new Error(`AUTH failed: ${auth.text}`);
    }
    const mail = await c.command(`MAIL FROM:${options.sender}`);
    if (mail.code !== 250) throw new Error(`MAIL refused: ${mail.text}`);
    const rcpt = await c.command(`RCPT TO:${options.recipient}`);
    if (rcpt.code !== 250) return { rcpt: rcpt.code };
    await c.command('DATA');
    const data = await c.command(`Subject: relay probe ${options.token}\r\nX-Rel-Token: ${options.token}\r\n\r\nprobe\r\n.`);
    return { rcpt: rcpt.code, data: data.code };
  } finally {
    await c.command('QUIT').catch(() => undefined);
    c.destroy();
  }
}

/** Waits until the queue is empty (every delivery tried), pushing deferred ones along. */
async function drainQueue(timeoutMs = 30_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let queue = '';
  while (Date.now() < deadline) {
    queue = await quail(['queue', '--root', root]);
    if (/messages in queue: 0\b/.test(queue)) return queue;
    await quail(['ctl', 'doqueue', '--root', root]);
    await sleep(500);
  }
  return queue;
}

const relayed = (token: string) => sink.messages.filter((m) => m.data.includes(`X-Rel-Token: ${token}`) && m.recipients.some((r) => /victim/i.test(r)));

describe('open relay: rcpthosts is not empty, the client has no RELAYCLIENT and did not authenticate', () => {
  it('no classic relay pattern gets a message to a foreign recipient', async () => {
    const accepted: string[] = [];
    let n = 0;
    for (const sender of SENDERS) {
      for (const recipient of RECIPIENTS) {
        const token = `open-${n++}`;
        const r = await attempt({ sender, recipient, token });
        if (r.rcpt === 250) accepted.push(`${sender} -> ${recipient} (DATA ${r.data})`);
      }
    }
    const queue = await drainQueue();
    const leaked = sink.messages.filter((m) => /X-Rel-Token: open-/.test(m.data) && m.recipients.some((r) => /victim/i.test(r)));
    const queuedForeign = queue.split('\n').filter((l) => /victim/i.test(l) && /foreign|1\.2\.3\.4/i.test(l));
    await recordMetrics('open-relay', {
      patterns: RECIPIENTS.length,
      senders: SENDERS.length,
      attempts: n,
      acceptedAtRcpt: accepted.length,
      acceptedPatterns: accepted,
      relayedToForeign: leaked.length,
      stillQueuedForForeign: queuedForeign.length,
    });
    expect(leaked.map((m) => m.recipients)).toEqual([]);
    expect(queuedForeign).toEqual([]);
  }, 240_000);
});

describe('relaying that is meant to work', () => {
  it('an authenticated client relays to a foreign recipient', async () => {
    const r = await attempt({ sender: `<joe@${DOMAIN}>`, recipient: '<victim@foreign.example>', auth: `joe@${DOMAIN}\0joe-secret-pw`, token: 'auth-1' });
    expect(r).toEqual({ rcpt: 250, data: 250 });
    await drainQueue();
    expect(relayed('auth-1')).toHaveLength(1);
    expect(relayed('auth-1')[0]!.recipients).toEqual(['victim@foreign.example']);
  }, 60_000);

  it('a client whose tcp.smtp rule sets RELAYCLIENT relays; the same client from another address does not', async () => {
    expect(await attempt({ sender: '<probe@relaytest.example>', recipient: '<victim@foreign.example>', from: '127.0.0.3', token: 'rc-1' })).toEqual({ rcpt: 250, data: 250 });
    expect((await attempt({ sender: '<probe@relaytest.example>', recipient: '<victim@foreign.example>', from: '127.0.0.4', token: 'rc-2' })).rcpt).toBe(553);
    await drainQueue();
    expect(relayed('rc-1')).toHaveLength(1);
    expect(relayed('rc-2')).toHaveLength(0);
  }, 60_000);

  it('mail for our own domains is still accepted from anyone (the refusals above are not a blanket refusal)', async () => {
    expect(await attempt({ sender: '<probe@relaytest.example>', recipient: `<joe@${DOMAIN}>`, token: 'local-1' })).toEqual({ rcpt: 250, data: 250 });
    expect(await attempt({ sender: '<>', recipient: `<postmaster@${ME}>`, token: 'local-2' })).toEqual({ rcpt: 250, data: 250 });
  }, 60_000);
});
