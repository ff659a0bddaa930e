// A queue for measuring plugin-smtpd alone: each message is written to its own
// file, the file and its directory are fsynced, and commit resolves. Nothing is
// scheduled or delivered (issue 3: "SMTP accept throughput with a null queue
// that fsyncs to disk").
import { open, mkdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { definePlugin, fsyncDir, fileSource, Message, Tokens } from '../../packages/core/dist/index.js';

export function nullQueuePlugin() {
  return definePlugin({
    name: 'null-queue',
    version: '0.0.0',
    provides: [Tokens.Queue],
    register(ctx) {
      const spool = join(ctx.root, 'spool');
      let serial = 0;
      let parser;
      const queue = {
        async create() {
          await mkdir(spool, { recursive: true });
          parser ??= ctx.resolve(Tokens.MessageParser);
          const id = `${process.pid}.${Date.now()}.${serial++}`;
          const path = join(spool, id);
          const fh = await open(path, 'wx');
          let size = 0;
          const stream = new Writable({
            write(chunk, _enc, cb) {
              size += chunk.length;
              fh.write(chunk).then(() => cb(), cb);
            },
            writev(chunks, cb) {
              const bufs = chunks.map((c) => c.chunk);
              for (const b of bufs) size += b.length;
              fh.writev(bufs).then(() => cb(), cb);
            },
          });
          return {
            id,
            stream,
            message: () => new Message(fileSource(path, size), parser),
            async commit() {
              await fh.sync();
              await fh.close();
              await fsyncDir(spool);
              return { id, qp: serial, acceptedAt: new Date() };
            },
            async abort() {
              await fh.close().catch(() => undefined);
              await unlink(path).catch(() => undefined);
            },
          };
        },
        async enqueue() {
          throw new Error('null-queue: enqueue is not offered');
        },
        async *list() {},
        async stat() {
          return { messages: 0, unprocessed: 0, pending: {}, paused: false };
        },
        async flush() {},
        pause() {},
        resume() {},
        async idle() {},
      };
      ctx.provide(Tokens.Queue, queue);
    },
  });
}
