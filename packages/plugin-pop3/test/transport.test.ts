import { once } from 'node:events';
import { createServer, connect, type Socket, type AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { DotStuffTransform, SocketTransport } from '../src/index.js';

const CHUNK = Buffer.alloc(64 * 1024, 'a');
CHUNK[CHUNK.length - 1] = 0x0a;
const TOTAL_CHUNKS = 4096; // 256 MB if it were all read

describe('SocketTransport.sendStream', () => {
  const cleanups: Array<() => void> = [];
  afterEach(() => cleanups.splice(0).forEach((f) => f()));

  async function pair(): Promise<{ server: Socket; client: Socket }> {
    const listener = createServer();
    listener.listen(0, '127.0.0.1');
    await once(listener, 'listening');
    const client = connect((listener.address() as AddressInfo).port, '127.0.0.1');
    const [server] = (await once(listener, 'connection')) as [Socket];
    cleanups.push(() => {
      client.destroy();
      server.destroy();
      listener.close();
    });
    return { server, client };
  }

  it('reads the message only as fast as the client takes it (backpressure), and delivers every byte', async () => {
    const { server, client } = await pair();
    client.pause();
    let pulled = 0;
    const source = Readable.from(
      (function* () {
        for (let i = 0; i < TOTAL_CHUNKS; i++) {
          pulled++;
          yield CHUNK;
        }
      })(),
    );
    const transport = new SocketTransport(server, server, false, undefined, { onData: () => undefined, onUpgrade: () => undefined });
    const sending = transport.sendStream(source, new DotStuffTransform());
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(pulled).toBeLessThan(TOTAL_CHUNKS / 8);
    let received = 0;
    client.on('data', (d: Buffer) => (received += d.length));
    client.resume();
    await sending;
    const expected = TOTAL_CHUNKS * (CHUNK.length + 1) + 3;
    while (received < expected) await new Promise((resolve) => setImmediate(resolve));
    expect(received).toBe(expected);
  });

  it('rejects when the client goes away in the middle, and stops reading the source', async () => {
    const { server, client } = await pair();
    let pulled = 0;
    const source = Readable.from(
      (function* () {
        for (let i = 0; i < TOTAL_CHUNKS; i++) {
          pulled++;
          yield CHUNK;
        }
      })(),
    );
    server.on('error', () => undefined);
    const transport = new SocketTransport(server, server, false, undefined, { onData: () => undefined, onUpgrade: () => undefined });
    const sending = transport.sendStream(source, new DotStuffTransform());
    client.once('data', () => client.destroy());
    await expect(sending).rejects.toThrow();
    expect(pulled).toBeLessThan(TOTAL_CHUNKS);
    expect(source.destroyed).toBe(true);
  });
});
