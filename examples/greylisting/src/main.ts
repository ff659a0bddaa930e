import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createServer } from '@quail/core';
import smtpd, { smtpdListeners } from '@quail/plugin-smtpd';
import queue from '@quail/plugin-queue';
import local from '@quail/plugin-local';
import maildir from '@quail/plugin-maildir';
import { greylistPlugin } from './greylist.js';

// A receiving server for example.test whose every address lands in var/alias/Maildir, greylisted.
const root = resolve(process.env.QUAIL_ROOT ?? 'var');
await mkdir(join(root, 'control'), { recursive: true });
await writeFile(join(root, 'control/me'), 'example.test\n');
await writeFile(join(root, 'control/smtpd.listen'), `${process.env.QUAIL_LISTEN ?? '127.0.0.1:2525'}\n`);
await writeFile(join(root, 'control/greylist.delay'), '60\n');
for (const dir of ['tmp', 'new', 'cur']) await mkdir(join(root, 'alias/Maildir', dir), { recursive: true });
await writeFile(join(root, 'alias/.qmail-default'), './Maildir/\n');

const server = createServer({ root, plugins: [greylistPlugin, smtpd, queue, local, maildir] });
await server.start();
console.log(`greylisting SMTP on 127.0.0.1:${smtpdListeners(server)[0]!.port} (delay 60 s). Ctrl-C stops.`);
process.once('SIGINT', () => void server.stop().then(() => process.exit(0)));
