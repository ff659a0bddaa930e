import { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { RawClient, startSmtpd, type TestServer } from './helpers.js';

let t: TestServer | undefined;
let restore: (() => void) | undefined;
afterEach(async () => {
  restore?.();
  restore = undefined;
  await t?.stop();
  t = undefined;
});

/**
 * Counts the write calls (each one a write or writev system call) that the
 * server makes on the socket of the client whose local port is given. The server
 * runs in this process, so its sockets share this prototype.
 */
function countServerWrites(clientPort: () => number): { count: number } {
  const counter = { count: 0 };
  const proto = Socket.prototype as unknown as { _writeGeneric: (...args: unknown[]) => unknown };
  const original = proto._writeGeneric;
  proto._writeGeneric = function (this: Socket, ...args: unknown[]) {
    if (this.remotePort === clientPort()) counter.count++;
    return original.apply(this, args);
  };
  restore = () => {
    proto._writeGeneric = original;
  };
  return counter;
}

describe('replies to pipelined commands', () => {
  it('leave in fewer writes than replies when the client sends several commands in one packet', async () => {
    t = await startSmtpd();
    const c = await RawClient.open(t.port());
    expect(await c.reply()).toMatch(/^220 /);
    expect(await c.command('EHLO c')).toMatch(/^250-mx\.example\.org/);
    const writes = countServerWrites(() => c.socket.localPort ?? -1);
    c.write('MAIL FROM:<a@example.net>\r\nRCPT TO:<x@mx.example.org>\r\nRCPT TO:<y@elsewhere.example>\r\nRCPT TO:<z@mx.example.org>\r\nNOOP\r\n');
    expect(await c.reply()).toBe('250 ok');
    expect(await c.reply()).toBe('250 ok');
    expect(await c.reply()).toBe("553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)");
    expect(await c.reply()).toBe('250 ok');
    expect(await c.reply()).toBe('250 ok');
    expect(writes.count).toBeGreaterThan(0);
    expect(writes.count).toBeLessThan(5);
    // a lone command is answered at once, in one write
    writes.count = 0;
    expect(await c.command('NOOP')).toBe('250 ok');
    expect(writes.count).toBe(1);
  });
});
