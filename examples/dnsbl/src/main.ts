import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createServer } from '@quail/core';
import smtpd, { smtpdListeners } from '@quail/plugin-smtpd';
import queue from '@quail/plugin-queue';
import local from '@quail/plugin-local';
import remote from '@quail/plugin-remote';
import maildir from '@quail/plugin-maildir';
import { dnsblPlugin } from './dnsbl.js';

// A receiving server for example.test (all mail in var/alias/Maildir) refusing clients listed in DNSBL_ZONES.
// plugin-remote provides the Resolver service, asking the servers in control/dnsservers (DNS_SERVERS).
const root = resolve(process.env.QUAIL_ROOT ?? 'var');
await mkdir(join(root, 'control'), { recursive: true });
await writeFile(join(root, 'control/me'), 'example.test\n');
await writeFile(join(root, 'control/smtpd.listen'), `${process.env.QUAIL_LISTEN ?? '127.0.0.1:2525'}\n`);
await writeFile(join(root, 'control/dnsbl.zones'), `${(process.env.DNSBL_ZONES ?? 'zen.spamhaus.org').split(/[\s,]+/).join('\n')}\n`);
await writeFile(join(root, 'control/dnsservers'), `${(process.env.DNS_SERVERS ?? '').split(/[\s,]+/).filter(Boolean).join('\n')}\n`);
for (const dir of ['tmp', 'new', 'cur']) await mkdir(join(root, 'alias/Maildir', dir), { recursive: true });
await writeFile(join(root, 'alias/.qmail-default'), './Maildir/\n');

const server = createServer({ root, plugins: [dnsblPlugin, smtpd, queue, local, remote, maildir] });
await server.start();
console.log(`SMTP on 127.0.0.1:${smtpdListeners(server)[0]!.port}, refusing clients listed in ${join(root, 'control/dnsbl.zones')}. Ctrl-C stops.`);
process.once('SIGINT', () => void server.stop().then(() => process.exit(0)));
