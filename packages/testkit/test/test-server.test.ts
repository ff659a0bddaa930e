import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { definePlugin, defer } from '@quail/core';
import { defaultPlugins, startTestServer, type TestServer } from '@quail/testkit';

let kit: TestServer | undefined;
afterEach(async () => {
  await kit?.stop();
  kit = undefined;
});

describe('startTestServer', () => {
  it('receives mail from nodemailer over SMTP and delivers it to a local Maildir', async () => {
    kit = await startTestServer({ users: ['joe'] });
    const info = await kit.send({ from: 'ann@example.org', to: 'joe@quail.test', subject: 'first', text: 'line one\n.line two\n' });
    expect(info.response).toMatch(/^250 ok \d+ qp \d+$/);
    const [message, ...rest] = await kit.waitForMessages('joe');
    expect(rest).toEqual([]);
    expect(message!.subject).toBe('first');
    expect(message!.returnPath).toBe('<ann@example.org>');
    expect(message!.deliveredTo).toBe('joe@quail.test');
    expect(message!.body).toContain('line one\n.line two\n');
    expect(message!.raw).not.toContain('\r\n');
    expect(message!.raw.split('\n').slice(0, 4).map((l) => l.split(':')[0])).toEqual(['Return-Path', 'Delivered-To', 'Received', 'Received']);
    expect((await message!.parse()).text).toContain('line two');
  });

  it('delivers extension addresses of a user (joe-lists@) to the same Maildir', async () => {
    kit = await startTestServer({ users: ['joe', 'sue'] });
    await kit.send({ from: 'ann@example.org', to: ['joe-lists@quail.test', 'sue@quail.test'] });
    expect((await kit.waitForMessages('joe'))[0]!.deliveredTo).toBe('joe-lists@quail.test');
    expect((await kit.waitForMessages('sue'))[0]!.deliveredTo).toBe('sue@quail.test');
  });

  it('turns a refusal into a rejected send with the SMTP code and text', async () => {
    kit = await startTestServer({ users: ['joe'] });
    await expect(kit.send({ from: 'ann@example.org', to: 'joe@elsewhere.example' })).rejects.toMatchObject({
      responseCode: 553,
      response: "553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)",
    });
  });

  it('runs any plugin list, with site plugins in front of the defaults', async () => {
    const closed = definePlugin({
      name: 'closed',
      register(ctx) {
        ctx.hooks.mail.tapPromise(ctx.name, async () => defer(451, 'come back later', '4.3.2'));
      },
    });
    kit = await startTestServer({ plugins: [closed, ...defaultPlugins()] });
    const smtp = await kit.dialog();
    expect(smtp.greeting.text).toBe('220 quail.test ESMTP');
    expect((await smtp.command('EHLO client.example')).lines).toContain('PIPELINING');
    expect((await smtp.command('MAIL FROM:<ann@example.org>')).text).toBe('451 come back later (#4.3.2)');
    await smtp.close();
  });

  it('reloads changed control files', async () => {
    kit = await startTestServer({ users: ['joe'] });
    expect(await kit.setControl('rcpthosts', 'quail.test\nother.test\n')).toBe(true);
    const smtp = await kit.dialog();
    await smtp.command('HELO client.example');
    await smtp.command('MAIL FROM:<ann@example.org>');
    expect((await smtp.command('RCPT TO:<joe@other.test>')).code).toBe(250);
    await smtp.close();
  });

  it('reports a bad control file with file and line, and leaves no temp root behind', async () => {
    const parent = await mkdtemp(join(tmpdir(), 'quail-kit-parent-'));
    const saved = process.env.TMPDIR;
    process.env.TMPDIR = parent;
    try {
      await expect(startTestServer({ control: { databytes: 'lots' } })).rejects.toThrow(/control\/databytes:1:/);
      expect(await readdir(parent)).toEqual([]);
    } finally {
      if (saved === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = saved;
      await rm(parent, { recursive: true, force: true });
    }
  });

  it('refuses file names that leave the root', async () => {
    await expect(startTestServer({ files: { '../escape': 'x' } })).rejects.toThrow(/relative to it, without \.\./);
  });

  it('removes its root on stop', async () => {
    kit = await startTestServer();
    const root = kit.root;
    expect(existsSync(join(root, 'control', 'me'))).toBe(true);
    await kit.stop();
    kit = undefined;
    expect(existsSync(root)).toBe(false);
  });
});
