import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { createServer, Tokens, type QuailServer, type Queue } from '@quail/core';
import queuePlugin from '@quail/plugin-queue';
import localPlugin from '@quail/plugin-local';
import maildirPlugin from '@quail/plugin-maildir';
import { dotQmail } from './helpers.js';

let root: string;
let server: QuailServer;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'quail-local-e2e-'));
  await chmod(root, 0o755);
  await mkdir(join(root, 'control'));
  await writeFile(join(root, 'control', 'me'), 'mx.example.com\n');
  await mkdir(join(root, 'alias'), { mode: 0o755 });
  await mkdir(join(root, 'users'));
  await mkdir(join(root, 'home', 'joe'), { recursive: true, mode: 0o755 });
  await writeFile(join(root, 'users', 'assign'), `=joe:joe:0:0:${join(root, 'home', 'joe')}:::\n.\n`);
  for (const sub of ['tmp', 'new', 'cur']) await mkdir(join(root, 'home', 'joe', 'Maildir', sub), { recursive: true });
  server = createServer({ root, plugins: [queuePlugin, localPlugin, maildirPlugin], log: { level: 'silent' } });
  await server.start();
});
afterEach(async () => {
  await server.stop();
  await rm(root, { recursive: true, force: true });
});

it('a message to postmaster is forwarded through the real queue into joe\'s Maildir', async () => {
  await dotQmail(join(root, 'alias', '.qmail-postmaster'), '&joe@mx.example.com\n');
  const queue = server.resolve(Tokens.Queue) as Queue;
  await queue.enqueue({ sender: 'alice@example.org', recipients: ['postmaster@mx.example.com'] }, 'Subject: hi\n\nhello\n', { kind: 'local', uid: 0 });
  const newDir = join(root, 'home', 'joe', 'Maildir', 'new');
  for (let i = 0; i < 100 && (await readdir(newDir)).length === 0; i++) await queue.idle();
  const [name] = await readdir(newDir);
  const text = await readFile(join(newDir, name!), 'utf8');
  const lines = text.split('\n');
  expect(lines.slice(0, 2)).toEqual(['Return-Path: <alice@example.org>', 'Delivered-To: joe@mx.example.com']);
  expect(lines[2]).toMatch(/^Received: \(qmail \d+ invoked by alias\); /);
  expect(lines[3]).toBe('Delivered-To: postmaster@mx.example.com');
  expect(lines[4]).toMatch(/^Received: \(qmail \d+ invoked by uid 0\); /);
  expect(text.endsWith('Subject: hi\n\nhello\n')).toBe(true);
});
