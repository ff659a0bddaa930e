import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { createServer, type LoggerOptions } from '@quail/core';
import smtpd, { smtpdListeners } from '@quail/plugin-smtpd';
import queue from '@quail/plugin-queue';
import local from '@quail/plugin-local';
import maildir from '@quail/plugin-maildir';

export interface MinimalOptions { root: string; domain?: string; listen?: string; log?: LoggerOptions }

/** SMTP in for one domain, every address of it filed in <root>/alias/Maildir. */
export async function startMinimalServer({ root, domain = 'example.test', listen = '127.0.0.1:2525', log }: MinimalOptions) {
  const put = async (path: string, text: string) => {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), text);
  };
  await put('control/me', `${domain}\n`); // rcpthosts and locals default to me
  await put('control/smtpd.listen', `${listen}\n`);
  await put('alias/.qmail-default', './Maildir/\n'); // any local address without an owner
  for (const dir of ['tmp', 'new', 'cur']) await mkdir(join(root, 'alias/Maildir', dir), { recursive: true });
  const server = createServer({ root, plugins: [smtpd, queue, local, maildir], ...(log && { log }) });
  await server.start();
  return { server, port: smtpdListeners(server)[0]!.port, maildir: join(root, 'alias/Maildir') };
}
