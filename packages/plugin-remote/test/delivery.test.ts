import { afterEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { Message, Tokens, bufferSource, fileSource, type DeliveryResult } from '@quail/core';
import { eventually, politeAnswer, smtpError, startPeer, startQuail, startRawPeer, type Fixture, type Peer } from './helpers.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function peer(options: Parameters<typeof startPeer>[0] = {}): Promise<Peer> {
  const p = await startPeer(options);
  cleanups.push(p.close);
  return p;
}

async function quail(files: Record<string, string>): Promise<Fixture> {
  const q = await startQuail(files);
  cleanups.push(q.stop);
  return q;
}

describe('delivery through smtproutes to a real SMTP server', () => {
  it('sends the stored message with CRLF line ends and dot-stuffing, and reports qmail-remote success', async () => {
    const sink = await peer();
    const q = await quail({ smtproutes: `example.net:127.0.0.1:${sink.port}\n` });
    const body = 'Received: (qmail 1 invoked by uid 0); now\nSubject: dots\n\n.leading dot\n..two dots\n.\nlast line\n';
    const report = await q.deliver(['bob@example.net'], body);
    expect(report).toHaveLength(1);
    const [result] = report as DeliveryResult[];
    expect(result!.kind).toBe('success');
    expect(result!.text).toMatch(/^127\.0\.0\.1 accepted message\.\nRemote host said: 250 /);
    expect(sink.messages).toHaveLength(1);
    // smtp-server undoes the dot-stuffing; what it hands on is the message with CRLF line ends.
    expect(sink.messages[0]!.data.toString()).toBe(body.replace(/\n/g, '\r\n'));
    expect(sink.messages[0]!.from).toBe('sender@quail.test');
    expect(sink.messages[0]!.to).toEqual(['bob@example.net']);
  });

  it('sends the null sender as MAIL FROM:<>', async () => {
    const sink = await peer();
    const q = await quail({ smtproutes: `example.net:127.0.0.1:${sink.port}\n` });
    const [result] = (await q.deliver(['bob@example.net'], 'Subject: bounce\n\nx\n', '')) as DeliveryResult[];
    expect(result!.kind).toBe('success');
    expect(sink.messages[0]!.from).toBe('');
  });

  it('sends recipients of one domain in one transaction and reports each recipient as the peer answered', async () => {
    const sink = await peer({
      script: {
        onRcptTo(address, _session, cb) {
          if (address.address.startsWith('gone')) return cb(smtpError(550, 'no such user here'));
          if (address.address.startsWith('full')) return cb(smtpError(452, 'mailbox full, try later'));
          cb();
        },
      },
    });
    const q = await quail({ smtproutes: `example.net:127.0.0.1:${sink.port}\n` });
    const report = (await q.deliver(['ann@example.net', 'gone@example.net', 'full@example.net', 'bea@example.net'])) as DeliveryResult[];
    expect(report.map((r) => r.kind)).toEqual(['success', 'failure', 'deferral', 'success']);
    expect(report[1]!.text).toBe('127.0.0.1 does not like recipient.\nRemote host said: 550 no such user here');
    expect(report[2]!.text).toBe('127.0.0.1 does not like recipient.\nRemote host said: 452 mailbox full, try later');
    expect(sink.connections).toBe(1);
    expect(sink.messages).toHaveLength(1);
    expect(sink.messages[0]!.to).toEqual(['ann@example.net', 'bea@example.net']);
  });

  it('gives every recipient its own rejection when none is accepted, and sends no DATA', async () => {
    const sink = await peer({ script: { onRcptTo: (_a, _s, cb) => cb(smtpError(550, 'nobody here')) } });
    const q = await quail({ smtproutes: `example.net:127.0.0.1:${sink.port}\n` });
    const report = (await q.deliver(['a@example.net', 'b@example.net'])) as DeliveryResult[];
    expect(report.map((r) => r.kind)).toEqual(['failure', 'failure']);
    expect(sink.messages).toHaveLength(0);
  });

  it('reports a refused sender: 5xx as failure, 4xx as deferral', async () => {
    const hard = await peer({ script: { onMailFrom: (_a, _s, cb) => cb(smtpError(553, 'sender denied')) } });
    const soft = await peer({ script: { onMailFrom: (_a, _s, cb) => cb(smtpError(451, 'greylisted')) } });
    const q = await quail({ smtproutes: `hard.test:127.0.0.1:${hard.port}\nsoft.test:127.0.0.1:${soft.port}\n` });
    const [h] = (await q.deliver(['x@hard.test'])) as DeliveryResult[];
    const [s] = (await q.deliver(['x@soft.test'])) as DeliveryResult[];
    expect(h).toEqual({ kind: 'failure', text: 'Connected to 127.0.0.1 but sender was rejected.\nRemote host said: 553 sender denied' });
    expect(s).toEqual({ kind: 'deferral', text: 'Connected to 127.0.0.1 but sender was rejected.\nRemote host said: 451 greylisted' });
  });

  it('reports the reply after the body: 5xx failure, 4xx deferral', async () => {
    const hard = await peer({ script: { afterData: () => smtpError(554, 'message looks like spam') } });
    const soft = await peer({ script: { afterData: () => smtpError(451, 'local error in processing') } });
    const q = await quail({ smtproutes: `hard.test:127.0.0.1:${hard.port}\nsoft.test:127.0.0.1:${soft.port}\n` });
    const [h] = (await q.deliver(['x@hard.test'])) as DeliveryResult[];
    const [s] = (await q.deliver(['x@soft.test'])) as DeliveryResult[];
    expect(h).toEqual({ kind: 'failure', text: '127.0.0.1 failed after I sent the message.\nRemote host said: 554 message looks like spam' });
    expect(s).toEqual({ kind: 'deferral', text: '127.0.0.1 failed after I sent the message.\nRemote host said: 451 local error in processing' });
  });

  it('honours the SIZE the peer announces: a larger message fails without MAIL being sent', async () => {
    const sink = await peer({ size: 1000 });
    const q = await quail({ smtproutes: `example.net:127.0.0.1:${sink.port}\n` });
    const [result] = (await q.deliver(['bob@example.net'], `Subject: big\n\n${'x'.repeat(5000)}\n`)) as DeliveryResult[];
    expect(result!.kind).toBe('failure');
    expect(result!.text).toContain('(#5.3.4)');
    expect(sink.mails).toBe(0);
    const [small] = (await q.deliver(['bob@example.net'], 'Subject: small\n\nok\n')) as DeliveryResult[];
    expect(small!.kind).toBe('success');
  });

  it('fails a recipient whose address cannot go on an SMTP line and still delivers the others', async () => {
    const sink = await peer();
    const q = await quail({ smtproutes: `example.net:127.0.0.1:${sink.port}\n` });
    const report = (await q.deliver(['ok@example.net', 'evil@example.net>\r\nRCPT TO:<x@example.net', 'nul\0@example.net'])) as DeliveryResult[];
    expect(report.map((r) => r.kind)).toEqual(['success', 'failure', 'failure']);
    expect(report[1]!.text).toContain('(#5.1.3)');
    expect(sink.messages[0]!.to).toEqual(['ok@example.net']);
  });

  it('quotes a local part that is not a dot-string', async () => {
    const raw = await startRawPeer({ onLine: politeAnswer });
    cleanups.push(raw.close);
    const q = await quail({ smtproutes: `example.net:127.0.0.1:${raw.port}\n` });
    const [result] = (await q.deliver(['john doe@example.net', 'a"b@example.net'])) as DeliveryResult[];
    expect(result!.kind).toBe('success');
    expect(raw.lines.filter((l) => l.startsWith('RCPT'))).toEqual(['RCPT TO:<"john doe"@example.net>', 'RCPT TO:<"a\\"b"@example.net>']);
  });

  it('says EHLO with helohost, pipelines RCPT and asks for 8BITMIME and SIZE when offered', async () => {
    let held = 0;
    const raw = await startRawPeer({
      onLine: (line, socket, state) => {
        if (/^EHLO /.test(line)) socket.write('250-raw.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 100000\r\n');
        else if (line.startsWith('RCPT')) {
          // Answer only once all three RCPTs are in: a client that waits for each reply would stall here.
          if (++held === 3) socket.write('250 ok\r\n250 ok\r\n250 ok\r\n');
        } else politeAnswer(line, socket, state);
      },
    });
    cleanups.push(raw.close);
    const q = await quail({ smtproutes: `example.net:127.0.0.1:${raw.port}\n`, timeoutremote: '3\n' });
    const body = 'Subject: caf\u00e9\n\n8-bit body: \u00e9\n';
    const report = (await q.deliver(['a@example.net', 'b@example.net', 'c@example.net'], body)) as DeliveryResult[];
    expect(report.map((r) => r.kind)).toEqual(['success', 'success', 'success']);
    expect(raw.lines[0]).toBe('EHLO quail.test');
    expect(raw.lines.find((l) => l.startsWith('MAIL'))).toBe(`MAIL FROM:<sender@quail.test> BODY=8BITMIME SIZE=${Buffer.byteLength(body)}`);
  });

  it('ends a message whose last line has no LF with CRLF before the dot', async () => {
    const sink = await peer();
    const q = await quail({ smtproutes: `example.net:127.0.0.1:${sink.port}\n` });
    const [result] = (await q.deliver(['bob@example.net'], 'Subject: partial\n\nno newline at the end')) as DeliveryResult[];
    expect(result!.kind).toBe('success');
    expect(sink.messages[0]!.data.toString()).toBe('Subject: partial\r\n\r\nno newline at the end\r\n');
  });

  it('streams a large message without changing a byte', async () => {
    const sink = await peer();
    const q = await quail({ smtproutes: `example.net:127.0.0.1:${sink.port}\n` });
    const line = `${'0123456789'.repeat(7)}\n`;
    const body = `Subject: large\n\n${line.repeat(Math.ceil((6 * 1024 * 1024) / line.length))}`;
    const [result] = (await q.deliver(['bob@example.net'], body)) as DeliveryResult[];
    expect(result!.kind).toBe('success');
    expect(sink.messages[0]!.data.length).toBe(Buffer.byteLength(body.replace(/\n/g, '\r\n')));
    expect(sink.messages[0]!.data.equals(Buffer.from(body.replace(/\n/g, '\r\n')))).toBe(true);
  });

  it('groups recipients by domain when a delivery mixes domains', async () => {
    const one = await peer();
    const two = await peer();
    const q = await quail({ smtproutes: `one.test:127.0.0.1:${one.port}\ntwo.test:127.0.0.1:${two.port}\n` });
    const report = (await q.deliver(['a@one.test', 'b@two.test', 'c@one.test'])) as DeliveryResult[];
    expect(report.map((r) => r.kind)).toEqual(['success', 'success', 'success']);
    expect(one.messages.map((m) => m.to)).toEqual([['a@one.test', 'c@one.test']]);
    expect(two.messages.map((m) => m.to)).toEqual([['b@two.test']]);
  });

  it('reaches an IPv6 smarthost given as a bracketed address', async () => {
    const sink = await peer({ host: '::1' });
    const q = await quail({ smtproutes: `example.net:[::1]:${sink.port}\n` });
    const [result] = (await q.deliver(['bob@example.net'])) as DeliveryResult[];
    expect(result).toMatchObject({ kind: 'success' });
    expect(result!.text).toMatch(/^::1 accepted message\./);
  });

  it('defers, without sending, a delivery whose server is stopping', async () => {
    const sink = await peer();
    const q = await quail({ smtproutes: `example.net:127.0.0.1:${sink.port}\n` });
    const controller = new AbortController();
    controller.abort();
    const report = await q.server.hooks.deliver.promise({
      id: 99,
      messageId: 'stopping',
      sender: 'a@quail.test',
      channel: 'remote',
      recipients: [{ recipient: 'b@example.net', route: { channel: 'remote', recipient: 'b@example.net', address: 'b@example.net' } }],
      message: new Message(bufferSource('Subject: x\n\nx\n'), q.server.resolve(Tokens.MessageParser)),
      queuedAt: new Date(),
      attempt: 1,
      signal: controller.signal,
    });
    expect(report).toEqual([{ kind: 'deferral', text: 'Delivery interrupted because the server is stopping. (#4.3.2)' }]);
    expect(sink.connections).toBe(0);
  });

  it('defers when the queued message cannot be read, and does not reuse that connection', async () => {
    const sink = await peer();
    const q = await quail({ smtproutes: `example.net:127.0.0.1:${sink.port}\n` });
    const report = await q.server.hooks.deliver.promise({
      id: 98,
      messageId: 'vanished',
      sender: 'a@quail.test',
      channel: 'remote',
      recipients: [{ recipient: 'b@example.net', route: { channel: 'remote', recipient: 'b@example.net', address: 'b@example.net' } }],
      message: new Message(fileSource(join(q.root, 'queue', 'no-such-file'), 120), q.server.resolve(Tokens.MessageParser)),
      queuedAt: new Date(),
      attempt: 1,
      signal: new AbortController().signal,
    });
    expect(report).toEqual([{ kind: 'deferral', text: 'Unable to read message. (#4.3.0)' }]);
    expect(sink.messages).toHaveLength(0);
    const [next] = (await q.deliver(['c@example.net'])) as DeliveryResult[];
    expect(next!.kind).toBe('success');
    expect(sink.connections).toBe(2);
  });

  it('leaves deliveries of other channels to other plugins', async () => {
    const q = await quail({});
    const report = await q.server.hooks.deliver.promise({
      id: 1,
      messageId: 'x',
      sender: '',
      channel: 'local',
      recipients: [],
      message: undefined as never,
      queuedAt: new Date(),
      attempt: 1,
      signal: new AbortController().signal,
    });
    expect(report).toBeUndefined();
  });
});

describe('connection reuse', () => {
  it('carries several messages over one connection', async () => {
    const sink = await peer();
    const q = await quail({ smtproutes: `example.net:127.0.0.1:${sink.port}\n` });
    for (let i = 0; i < 5; i++) expect(((await q.deliver([`u${i}@example.net`])) as DeliveryResult[])[0]!.kind).toBe('success');
    expect(sink.messages).toHaveLength(5);
    expect(sink.connections).toBe(1);
  });

  it('sends RSET on a reused connection only after a transaction that stopped before the dot', async () => {
    const raw = await startRawPeer({
      onLine(line, socket, state) {
        if (/^RCPT TO:<gone@/i.test(line)) socket.write('550 no such user\r\n');
        else politeAnswer(line, socket, state);
      },
    });
    cleanups.push(raw.close);
    const q = await quail({ smtproutes: `example.net:127.0.0.1:${raw.port}\n` });
    const kinds: string[] = [];
    for (const rcpt of ['a@example.net', 'b@example.net', 'gone@example.net', 'c@example.net']) {
      kinds.push(((await q.deliver([rcpt])) as DeliveryResult[])[0]!.kind);
    }
    expect(kinds).toEqual(['success', 'success', 'failure', 'success']);
    expect(raw.connections).toBe(1);
    const commands = raw.lines.filter((l) => /^(MAIL|RSET)/i.test(l)).map((l) => l.slice(0, 4).toUpperCase());
    expect(commands).toEqual(['MAIL', 'MAIL', 'MAIL', 'RSET', 'MAIL']);
  });

  it('opens a connection per message when control/remote.reuse is 1 (qmail\'s way)', async () => {
    const sink = await peer();
    const q = await quail({ smtproutes: `example.net:127.0.0.1:${sink.port}\n`, 'remote.reuse': '1\n' });
    for (let i = 0; i < 4; i++) await q.deliver([`u${i}@example.net`]);
    expect(sink.messages).toHaveLength(4);
    expect(sink.connections).toBe(4);
    await eventually(() => sink.closed === 4, 'every connection to be closed');
  });

  it('closes a connection after remote.reuse messages', async () => {
    const sink = await peer();
    const q = await quail({ smtproutes: `example.net:127.0.0.1:${sink.port}\n`, 'remote.reuse': '2\n' });
    for (let i = 0; i < 5; i++) await q.deliver([`u${i}@example.net`]);
    expect(sink.connections).toBe(3);
  });

  it('closes an idle connection after remote.idle seconds', async () => {
    const sink = await peer();
    const q = await quail({ smtproutes: `example.net:127.0.0.1:${sink.port}\n`, 'remote.idle': '1\n' });
    await q.deliver(['a@example.net']);
    expect(sink.closed).toBe(0);
    await eventually(() => sink.closed === 1, 'the idle connection to be closed');
    await q.deliver(['b@example.net']);
    expect(sink.connections).toBe(2);
  });

  it('opens a new connection when the peer dropped the pooled one', async () => {
    const sink = await peer({ socketTimeout: 300 });
    const q = await quail({ smtproutes: `example.net:127.0.0.1:${sink.port}\n` });
    await q.deliver(['a@example.net']);
    await eventually(() => sink.closed === 1, 'the peer to drop the idle connection');
    const [result] = (await q.deliver(['b@example.net'])) as DeliveryResult[];
    expect(result!.kind).toBe('success');
    expect(sink.connections).toBe(2);
  });

  it('closes pooled connections when the server stops', async () => {
    const sink = await peer();
    const q = await quail({ smtproutes: `example.net:127.0.0.1:${sink.port}\n` });
    await q.deliver(['a@example.net']);
    expect(sink.closed).toBe(0);
    await q.server.stop();
    await eventually(() => sink.closed === 1, 'the pooled connection to be closed on stop');
  });

  it('gives parallel deliveries their own connections and reuses them afterwards', async () => {
    const sink = await peer();
    const q = await quail({ smtproutes: `example.net:127.0.0.1:${sink.port}\n` });
    const first = await Promise.all([1, 2, 3].map((i) => q.deliver([`p${i}@example.net`])));
    expect(first.flat().map((r) => (r as DeliveryResult).kind)).toEqual(['success', 'success', 'success']);
    expect(sink.connections).toBe(3);
    await Promise.all([4, 5, 6].map((i) => q.deliver([`p${i}@example.net`])));
    expect(sink.connections).toBe(3);
    expect(sink.messages).toHaveLength(6);
  });

  it('keeps at most concurrencyremote connections open', async () => {
    const peers = [await peer(), await peer(), await peer()];
    const q = await quail({
      smtproutes: peers.map((p, i) => `d${i}.test:127.0.0.1:${p.port}`).join('\n') + '\n',
      concurrencyremote: '2\n',
    });
    for (let i = 0; i < 3; i++) await q.deliver([`x@d${i}.test`]);
    await eventually(() => peers[0]!.closed === 1, 'the oldest idle connection to be closed for room');
    expect(peers[1]!.closed + peers[2]!.closed).toBe(0);
  });
});
