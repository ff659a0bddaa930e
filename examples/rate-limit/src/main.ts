import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createServer } from '@quail/core';
import smtpd, { smtpdListeners } from '@quail/plugin-smtpd';
import queue from '@quail/plugin-queue';
import local from '@quail/plugin-local';
import maildir from '@quail/plugin-maildir';
import { rateLimitPlugin } from './rate-limit.js';

// A receiving server for example.test (all mail in var/alias/Maildir) that takes 5 messages a minute per client.
const root = resolve(process.env.QUAIL_ROOT ?? 'var');
await mkdir(join(root, 'control'), { recursive: true });
await writeFile(join(root, 'control/me'), 'example.test\n');
await writeFile(join(root, 'control/smtpd.listen'), `${process.env.QUAIL_LISTEN ?? '127.0.0.1:2525'}\n`);
await writeFile(join(root, 'control/ratelimit.ip'), '5/60\n');
for (const dir of ['tmp', 'new', 'cur']) await mkdir(join(root, 'alias/Maildir', dir), { recursive: true });
await writeFile(join(root, 'alias/.qmail-default'), './Maildir/\n');

const server = createServer({ root, plugins: [rateLimitPlugin, smtpd, queue, local, maildir] });
await server.start();
console.log(`rate-limited SMTP on 127.0.0.1:${smtpdListeners(server)[0]!.port} (5 messages a minute per client). Ctrl-C stops.`);
process.once('SIGINT', () => void server.stop().then(() => process.exit(0)));
