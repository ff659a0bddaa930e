import { afterEach, describe, expect, it } from 'vitest';
import { deny, defer, disconnect, definePlugin, ErrorCodes, QuailError, Tokens, type Plugin } from '@quail/core';
import { SpoolQueue } from '@quail/plugin-smtpd';
import { RawClient, startSmtpd, type TestServer } from './helpers.js';

let t: TestServer | undefined;
afterEach(async () => {
  await t?.stop();
  t = undefined;
});

function recorder(events: string[]): Plugin {
  return definePlugin({
    name: 'recorder',
    register(ctx) {
      ctx.hooks.connect.tapPromise('recorder', async (conn) => {
        events.push(`connect ${conn.remoteAddress} ${conn.protocol} ${JSON.stringify(conn.env)}`);
        return conn.remoteAddress === '127.0.0.9' ? disconnect('go away (#4.7.0)') : undefined;
      });
      ctx.hooks.helo.tapPromise('recorder', async (_conn, name) => {
        events.push(`helo ${name}`);
        return name === 'bad.example' ? deny(550, 'bad helo', '5.7.1') : undefined;
      });
      ctx.hooks.mail.tapPromise('recorder', async (tx, addr) => {
        events.push(`mail ${addr.address} ${JSON.stringify(addr.params)}`);
        expect(tx.connection.helo).toBeDefined();
        return undefined;
      });
      ctx.hooks.rcpt.tapPromise('recorder', async (_tx, addr) => {
        events.push(`rcpt ${addr.address}`);
        if (addr.local === 'nobody') return deny(550, 'sorry, no mailbox here by that name.', '5.1.1');
        if (addr.local === 'later') return defer(450, 'try later', '4.2.1');
        if (addr.local === 'crash') throw new Error('plugin bug');
        return undefined;
      });
      ctx.hooks.data.tapPromise('recorder', async (tx, message) => {
        const headers = await message.headers();
        events.push(`data size=${tx.size} subject=${headers.get('subject') as string} rcpts=${tx.recipients.length}`);
        const first = await new Promise<string>((resolve) => message.stream().once('data', (d: Buffer) => resolve(d.toString())));
        events.push(`data starts ${first.split('\n')[0]!.slice(0, 22)}`);
        return headers.get('subject') === 'spam' ? deny(554, 'message refused', '5.7.1') : undefined;
      });
      ctx.hooks.queue.tapPromise('recorder', async (tx) => {
        events.push(`queue ${tx.recipients.map((r) => r.address).join(',')}`);
        return undefined;
      });
    },
  });
}

describe('kernel hooks', () => {
  it('fire at their points, see the transaction, and their verdicts become replies', async () => {
    const events: string[] = [];
    t = await startSmtpd({ 'tcp.smtp': '127.:allow,SITE="x"\n' }, [recorder(events)]);
    const c = await RawClient.open(t.port());
    expect(await c.reply()).toBe('220 mx.example.org ESMTP');
    expect(await c.command('HELO bad.example')).toBe('550 bad helo (#5.7.1)');
    expect(await c.command('EHLO good.example')).toMatch(/^250-/);
    expect(await c.command('MAIL FROM:<a@example.net> BODY=8BITMIME')).toBe('250 ok');
    expect(await c.command('RCPT TO:<nobody@mx.example.org>')).toBe('550 sorry, no mailbox here by that name. (#5.1.1)');
    expect(await c.command('RCPT TO:<later@mx.example.org>')).toBe('450 try later (#4.2.1)');
    expect(await c.command('RCPT TO:<crash@mx.example.org>')).toBe('451 temporary failure in a server plugin (#4.3.0)');
    expect(await c.command('RCPT TO:<far@elsewhere.example>')).toBe("553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)");
    expect(await c.command('RCPT TO:<joe@mx.example.org>')).toBe('250 ok');
    expect(await c.command('DATA')).toBe('354 go ahead');
    expect(await c.command('Subject: hello\r\n\r\nbody\r\n.')).toMatch(/^250 ok \d+ qp \d+$/);
    await c.command('MAIL FROM:<a@example.net>');
    await c.command('RCPT TO:<joe@mx.example.org>');
    await c.command('DATA');
    expect(await c.command('Subject: spam\r\n\r\nbuy\r\n.')).toBe('554 message refused (#5.7.1)');
    expect(t.messages()).toHaveLength(1);
    expect(events).toEqual([
      'connect 127.0.0.1 smtp {"SITE":"x"}',
      'helo bad.example',
      'helo good.example',
      'mail a@example.net {"BODY":"8BITMIME"}',
      'rcpt nobody@mx.example.org',
      'rcpt later@mx.example.org',
      'rcpt crash@mx.example.org',
      'rcpt joe@mx.example.org',
      'data size=21 subject=hello rcpts=1',
      'data starts Received: from localho',
      'queue joe@mx.example.org',
      'mail a@example.net {}',
      'rcpt joe@mx.example.org',
      'data size=19 subject=spam rcpts=1',
      'data starts Received: from localho',
    ]);
  });

  it('closes the connection when connect says disconnect', async () => {
    t = await startSmtpd({}, [recorder([])]);
    const c = await RawClient.open(t.port(), '127.0.0.9');
    expect(await c.reply()).toBe('421 go away (#4.7.0)');
    await c.waitClosed();
  });

  it('lets a queue tap take a message over: 250 and nothing in the Queue', async () => {
    const taken: number[] = [];
    const takeover = definePlugin({
      name: 'takeover',
      register(ctx) {
        ctx.hooks.queue.tapPromise('takeover', async (_tx, message) => {
          taken.push(message.size);
          return { kind: 'accept', message: 'ok handed to the archive' };
        });
      },
    });
    t = await startSmtpd({}, [takeover]);
    const c = await RawClient.open(t.port());
    await c.reply();
    await c.command('MAIL FROM:<a@example.net>');
    await c.command('RCPT TO:<joe@mx.example.org>');
    await c.command('DATA');
    expect(await c.command('Subject: x\r\n\r\n.')).toBe('250 ok handed to the archive');
    expect(taken).toHaveLength(1);
    await expect.poll(() => t!.spoolFiles()).toEqual([]);
  });
});

/** A spool whose commit fails as a full disk would, or whose create fails outright. */
function brokenQueue(dir: () => string, mode: 'commit' | 'create'): Plugin {
  return definePlugin({
    name: 'broken-queue',
    provides: [Tokens.Queue],
    register(ctx) {
      ctx.provideFactory(Tokens.Queue, () => {
        const spool = new SpoolQueue({ dir: dir(), parser: ctx.resolve(Tokens.MessageParser), clock: ctx.resolve(Tokens.Clock) });
        const create = spool.create.bind(spool);
        spool.create = async (origin) => {
          if (mode === 'create') throw new QuailError(ErrorCodes.TEMPORARY, 'queue is down');
          const writer = await create(origin);
          return { ...writer, stream: writer.stream, commit: async () => Promise.reject(new QuailError(ErrorCodes.TEMPORARY, 'ENOSPC: no space left on device')) };
        };
        return spool;
      });
    },
  });
}

describe('queue failures', () => {
  it.each([
    ['commit', '451 qq write error or disk full (#4.3.0)'],
    ['create', '451 qqt failure (#4.3.0)'],
  ] as const)('a failing %s gives 451 and leaves nothing queued', async (mode, text) => {
    let spool = '';
    t = await startSmtpd({}, [], { queue: brokenQueue(() => spool, mode) });
    spool = t.spool;
    const c = await RawClient.open(t.port());
    await c.reply();
    await c.command('MAIL FROM:<a@example.net>');
    await c.command('RCPT TO:<joe@mx.example.org>');
    if (mode === 'create') {
      expect(await c.command('DATA')).toBe(text);
    } else {
      expect(await c.command('DATA')).toBe('354 go ahead');
      expect(await c.command('Subject: x\r\n\r\nbody\r\n.')).toBe(text);
    }
    expect(await c.command('NOOP')).toBe('250 ok');
    await expect.poll(() => t!.spoolFiles()).toEqual([]);
  });
});

describe('graceful stop', () => {
  it('closes idle sessions with 421 and lets a message in progress finish', async () => {
    t = await startSmtpd();
    const idle = await RawClient.open(t.port());
    await idle.reply();
    const busy = await RawClient.open(t.port());
    await busy.reply();
    await busy.command('MAIL FROM:<a@example.net>');
    await busy.command('RCPT TO:<joe@mx.example.org>');
    await busy.command('DATA');
    busy.write('Subject: in flight\r\n\r\n');
    const stopping = t.server.stop();
    expect(await idle.reply()).toBe('421 mx.example.org shutting down, try again later (#4.3.0)');
    await idle.waitClosed();
    busy.write('still coming\r\n.\r\n');
    expect(await busy.reply()).toMatch(/^250 ok \d+ qp \d+$/);
    expect(await busy.command('MAIL FROM:<b@example.net>')).toBe('421 mx.example.org shutting down, try again later (#4.3.0)');
    await stopping;
    expect(t.messages().map((m) => m.data.split('\n').slice(2).join('\n'))).toEqual(['Subject: in flight\n\nstill coming\n']);
  });
});
