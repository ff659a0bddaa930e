import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_REPLY, SmtpDialog } from '@quail/testkit';

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise((resolve) => s.close(resolve));
});

/** A raw TCP peer that writes `greeting`, then answers each line with `answer(line, socket)`. */
async function peer(greeting: string | Buffer, answer: (line: string, socket: Socket) => void = () => undefined, closeAfterGreeting = false): Promise<number> {
  const server = createServer((socket) => {
    if (closeAfterGreeting) socket.end(greeting);
    else socket.write(greeting);
    let buffer = '';
    socket.on('data', (chunk) => {
      buffer += chunk.toString('latin1');
      for (let i = buffer.indexOf('\r\n'); i >= 0; i = buffer.indexOf('\r\n')) {
        answer(buffer.slice(0, i), socket);
        buffer = buffer.slice(i + 2);
      }
    });
    socket.on('error', () => undefined);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

describe('SmtpDialog', () => {
  it('reads multi-line replies split across packets, and dot-stuffs DATA', async () => {
    const seen: string[] = [];
    const port = await peer('220-first\r\n220 second\r\n', (line, socket) => {
      seen.push(line);
      if (line === 'EHLO x') {
        socket.write('250-quail.test\r\n250-PIPE');
        setTimeout(() => socket.write('LINING\r\n250 8BITMIME\r\n'), 20);
      } else if (line === 'DATA') socket.write('354 go ahead\r\n');
      else if (line === '.') socket.write('250 ok 1 qp 2\r\n');
      else if (line === 'QUIT') socket.end('221 bye\r\n');
    });
    const smtp = await SmtpDialog.open(port);
    expect(smtp.greeting).toEqual({ code: 220, lines: ['first', 'second'], text: '220-first\n220 second' });
    expect((await smtp.command('EHLO x')).lines).toEqual(['quail.test', 'PIPELINING', '8BITMIME']);
    expect((await smtp.data('Subject: s\n\n.leading dot\nend\n')).text).toBe('250 ok 1 qp 2');
    await smtp.close();
    expect(seen).toEqual(['EHLO x', 'DATA', 'Subject: s', '', '..leading dot', 'end', '.', 'QUIT']);
  });

  it('fails clearly on a line that is not a reply, a peer that closes mid-reply, a 10 MB line, and silence', async () => {
    await expect(SmtpDialog.open(await peer('hello there\r\n'))).rejects.toThrow('not an SMTP reply line: "hello there"');
    await expect(SmtpDialog.open(await peer('220-partial\r\n', undefined, true))).rejects.toThrow(/closed the connection without a complete reply/);
    await expect(SmtpDialog.open(await peer(Buffer.alloc(10 * 1024 * 1024, 'x')))).rejects.toThrow(`the server sent more than ${MAX_REPLY} bytes without completing a reply`);
    await expect(SmtpDialog.open(await peer(''), { replyTimeoutMs: 100 })).rejects.toThrow('no SMTP reply within 100 ms');
  });
});
