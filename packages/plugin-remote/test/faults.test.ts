import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { DeliveryResult } from '@quail/core';
import { politeAnswer, startDns, startPeer, startQuail, startRawPeer, type Fixture } from './helpers.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function quail(files: Record<string, string>): Promise<Fixture> {
  const q = await startQuail(files);
  cleanups.push(q.stop);
  return q;
}

async function raw(options: Parameters<typeof startRawPeer>[0]) {
  const p = await startRawPeer(options);
  cleanups.push(p.close);
  return p;
}

const route = (port: number, domain = 'example.net') => ({ smtproutes: `${domain}:127.0.0.1:${port}\n` });

describe('peers that misbehave', () => {
  it('defers when the peer greets with 554, with its text kept', async () => {
    const peer = await raw({ greeting: '554 no mail for you\r\n', onLine: politeAnswer });
    const q = await quail(route(peer.port));
    const [result] = (await q.deliver(['x@example.net'])) as DeliveryResult[];
    expect(result).toEqual({ kind: 'deferral', text: 'Connected to 127.0.0.1 but greeting failed.\nRemote host said: 554 no mail for you' });
  });

  it('moves on to the next exchanger after a 554 greeting', async () => {
    const good = await startPeer({ host: '127.0.0.3' });
    cleanups.push(good.close);
    const refusing = await raw({ host: '127.0.0.2', port: good.port, greeting: '554 go away\r\n' });
    const zone = await startDns({
      'two.test': { mx: [[10, 'bad.two.test'], [20, 'good.two.test']] },
      'bad.two.test': { a: ['127.0.0.2'] },
      'good.two.test': { a: ['127.0.0.3'] },
    });
    cleanups.push(zone.close);
    const q = await quail({ dnsservers: `${zone.address}\n`, 'remote.port': `${good.port}\n` });
    const [result] = (await q.deliver(['x@two.test'])) as DeliveryResult[];
    expect(refusing.connections).toBe(1);
    expect(result!.kind).toBe('success');
    expect(result!.text).toMatch(/^127\.0\.0\.3 accepted message/);
  });

  it('reports the last peer that answered when every exchanger refuses', async () => {
    const first = await raw({ host: '127.0.0.2', greeting: '421 too busy\r\n' });
    const second = await raw({ host: '127.0.0.3', port: first.port, greeting: '554 go away\r\n' });
    const zone = await startDns({
      'two.test': { mx: [[10, 'a.two.test'], [20, 'b.two.test']] },
      'a.two.test': { a: ['127.0.0.2'] },
      'b.two.test': { a: ['127.0.0.3'] },
    });
    cleanups.push(zone.close);
    const q = await quail({ dnsservers: `${zone.address}\n`, 'remote.port': `${first.port}\n` });
    const [result] = (await q.deliver(['x@two.test'])) as DeliveryResult[];
    expect(first.connections + second.connections).toBe(2);
    expect(result).toEqual({ kind: 'deferral', text: 'Connected to 127.0.0.3 but greeting failed.\nRemote host said: 554 go away' });
  });

  it('defers when the peer rejects EHLO and HELO', async () => {
    const peer = await raw({
      onLine: (line, socket, state) => {
        if (/^(EHLO|HELO)/i.test(line)) socket.write('550 I do not like your name\r\n');
        else politeAnswer(line, socket, state);
      },
    });
    const q = await quail(route(peer.port));
    const [result] = (await q.deliver(['x@example.net'])) as DeliveryResult[];
    expect(result).toEqual({ kind: 'deferral', text: 'Connected to 127.0.0.1 but my name was rejected.\nRemote host said: 550 I do not like your name' });
    expect(peer.lines.filter((l) => /^(EHLO|HELO) quail\.test$/.test(l))).toHaveLength(2);
  });

  it('defers, without "Possible duplicate", when the connection drops in the middle of the body', async () => {
    const peer = await raw({
      onLine: (line, socket, state) => {
        politeAnswer(line, socket, state);
        if (state.inData && line === 'DATA') socket.once('data', () => socket.destroy());
      },
    });
    const q = await quail(route(peer.port));
    const body = `Subject: big\n\n${'y'.repeat(200)}\n`.repeat(50_000);
    const [result] = (await q.deliver(['x@example.net'], body)) as DeliveryResult[];
    expect(result).toEqual({ kind: 'deferral', text: 'Connected to 127.0.0.1 but connection died. (#4.4.2)' });
  });

  it('defers with "Possible duplicate!" when the connection drops after the final dot', async () => {
    const peer = await raw({
      onLine: (line, socket, state) => {
        if (line === '.') socket.destroy();
        else politeAnswer(line, socket, state);
      },
    });
    const q = await quail(route(peer.port));
    const [result] = (await q.deliver(['x@example.net'])) as DeliveryResult[];
    expect(result).toEqual({ kind: 'deferral', text: 'Connected to 127.0.0.1 but connection died. Possible duplicate! (#4.4.2)' });
  });

  it('defers when the peer answers with garbage', async () => {
    const greeting = await raw({ greeting: 'hello, I am not an SMTP server\r\n' });
    const afterMail = await raw({
      onLine: (line, socket, state) => {
        if (line.startsWith('MAIL')) socket.write('what is this?\r\n');
        else politeAnswer(line, socket, state);
      },
    });
    const q = await quail({ smtproutes: `g.test:127.0.0.1:${greeting.port}\nm.test:127.0.0.1:${afterMail.port}\n` });
    const [g] = (await q.deliver(['x@g.test'])) as DeliveryResult[];
    expect(g).toEqual({ kind: 'deferral', text: 'Connected to 127.0.0.1 but greeting failed.\nRemote host said: hello, I am not an SMTP server' });
    const [m] = (await q.deliver(['x@m.test'])) as DeliveryResult[];
    expect(m).toEqual({ kind: 'deferral', text: 'Connected to 127.0.0.1 but sender was rejected.\nRemote host said: what is this?' });
  });

  it('cuts off a peer that sends a 10 MB line', async () => {
    const peer = await raw({
      greeting: (socket) => {
        const chunk = Buffer.alloc(1024 * 1024, 'a');
        let sent = 0;
        const more = () => {
          while (sent < 10 && !socket.destroyed) {
            sent++;
            if (!socket.write(chunk)) return void socket.once('drain', more);
          }
        };
        more();
      },
    });
    const q = await quail(route(peer.port));
    const [result] = (await q.deliver(['x@example.net'])) as DeliveryResult[];
    expect(result).toEqual({ kind: 'deferral', text: 'Connected to 127.0.0.1 but connection died. (#4.4.2)' });
  });

  it('gives up on a peer that answers one byte per second, after timeoutremote', async () => {
    const timers: NodeJS.Timeout[] = [];
    const peer = await raw({
      greeting: (socket) => {
        const text = '220 slow.test ESMTP at your service, eventually\r\n';
        let i = 0;
        const tick = setInterval(() => {
          if (socket.destroyed || i >= text.length) return clearInterval(tick);
          socket.write(text[i++]!);
        }, 1000);
        timers.push(tick);
      },
    });
    cleanups.push(async () => timers.forEach(clearInterval));
    const q = await quail({ ...route(peer.port), timeoutremote: '2\n' });
    const [result] = (await q.deliver(['x@example.net'])) as DeliveryResult[];
    expect(result).toEqual({ kind: 'deferral', text: 'Connected to 127.0.0.1 but connection died. (#4.4.2)' });
  });

  it('gives up connecting after timeoutconnect when the peer never completes the handshake', async () => {
    // A socket that listens with a backlog of 0 and never accepts: once one connection waits in its queue,
    // the kernel drops further SYNs, so a connect neither succeeds nor fails.
    const python = spawn('python3', ['-c', 'import socket,sys,time\ns=socket.socket();s.bind(("127.0.0.2",0));s.listen(0)\nprint(s.getsockname()[1],flush=True)\ntime.sleep(60)']);
    cleanups.push(async () => void python.kill());
    const port = Number(await new Promise<string>((resolve) => python.stdout.once('data', (d: Buffer) => resolve(d.toString().trim()))));
    const filler = connect(port, '127.0.0.2');
    filler.on('error', () => undefined);
    cleanups.push(async () => void filler.destroy());
    await new Promise((r) => filler.once('connect', r));
    const q = await quail({ smtproutes: `example.net:127.0.0.2:${port}\n`, timeoutconnect: '1\n' });
    const [result] = (await q.deliver(['x@example.net'])) as DeliveryResult[];
    expect(result).toEqual({
      kind: 'deferral',
      text: `Sorry, I wasn't able to establish an SMTP connection. (#4.4.1)\nconnect to 127.0.0.2:${port} timed out after 1 s`,
    });
  });

  it('defers when nothing listens', async () => {
    const peer = await raw({});
    const port = peer.port;
    await peer.close();
    const q = await quail(route(port));
    const [result] = (await q.deliver(['x@example.net'])) as DeliveryResult[];
    expect(result!.kind).toBe('deferral');
    expect(result!.text).toContain("Sorry, I wasn't able to establish an SMTP connection. (#4.4.1)");
  });
});

describe('a peer that accepts STARTTLS and then breaks it', () => {
  async function breakingPeer() {
    return raw({
      onLine: (line, socket, state) => {
        const verb = line.slice(0, 8).toUpperCase();
        if (verb.startsWith('EHLO')) socket.write('250-raw.test\r\n250-STARTTLS\r\n250 PIPELINING\r\n');
        else if (verb === 'STARTTLS') {
          socket.write('220 go ahead\r\n');
          setTimeout(() => socket.end('\x15\x03\x03\x00\x02\x02\x28 this is not a TLS handshake\r\n'), 20);
        } else politeAnswer(line, socket, state);
      },
    });
  }

  it('may (the default): retries the same peer in plain text and delivers', async () => {
    const peer = await breakingPeer();
    const q = await quail(route(peer.port));
    const [result] = (await q.deliver(['x@example.net'])) as DeliveryResult[];
    expect(result!.kind).toBe('success');
    expect(peer.connections).toBe(2);
    expect(peer.lines.filter((l) => l === 'STARTTLS')).toHaveLength(1);
  });

  it('encrypt: defers, naming the TLS failure', async () => {
    const peer = await breakingPeer();
    const q = await quail({ ...route(peer.port), tlsdestinations: 'example.net:encrypt\n' });
    const [result] = (await q.deliver(['x@example.net'])) as DeliveryResult[];
    expect(result!.kind).toBe('deferral');
    expect(result!.text).toMatch(/^Connected to 127\.0\.0\.1 but the TLS negotiation failed: .+ \(#4\.7\.5\)$/);
    expect(peer.connections).toBe(1);
  });
});
