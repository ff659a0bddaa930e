import { readFile } from 'node:fs/promises';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { readMaildir } from '@quail/testkit';
import { startMinimalServer } from '../src/server.js';

let root: string;
let running: Awaited<ReturnType<typeof startMinimalServer>>;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'quail-minimal-'));
  running = await startMinimalServer({ root, listen: '127.0.0.1:0', log: { level: 'silent' } });
});
afterEach(async () => {
  await running.server.stop();
  await rm(root, { recursive: true, force: true });
});

function send(mail: nodemailer.SendMailOptions) {
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port: running.port, secure: false, ignoreTLS: true });
  return transport.sendMail(mail).finally(() => transport.close());
}

async function waitForMail(count: number) {
  for (let i = 0; i < 400; i++) {
    const found = await readMaildir(running.maildir);
    if (found.length >= count) return found;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`expected ${count} messages in ${running.maildir}`);
}

it('takes mail for its domain over SMTP and files every address in one Maildir', async () => {
  await send({ from: 'ann@example.org', to: 'sales@example.test', subject: 'one', text: 'first\n' });
  await send({ from: 'ann@example.org', to: 'Info@EXAMPLE.test', subject: 'two', text: 'second\n' });
  const mail = await waitForMail(2);
  expect(mail.map((m) => [m.subject, m.deliveredTo, m.returnPath])).toEqual([
    ['one', 'sales@example.test', '<ann@example.org>'],
    ['two', 'Info@example.test', '<ann@example.org>'],
  ]);
  expect(mail[1]!.body).toContain('second');
});

it('refuses to relay for other domains', async () => {
  await expect(send({ from: 'ann@example.org', to: 'bob@elsewhere.example', text: 'x' })).rejects.toMatchObject({ responseCode: 553 });
});

it('is under 40 lines of TypeScript', async () => {
  const lines = async (f: string) => (await readFile(new URL(`../src/${f}`, import.meta.url), 'utf8')).trimEnd().split('\n').length;
  expect((await lines('server.ts')) + (await lines('main.ts'))).toBeLessThan(40);
});
