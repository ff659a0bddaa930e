import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Daemon, assertBuilt, eventually, freePort, quail, tempDir } from './helpers.js';

const sh = promisify(execFile);

describe('quail demo (the README quick start)', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let demo: Daemon | undefined;

  beforeAll(async () => {
    assertBuilt();
    ({ dir, cleanup } = await tempDir());
  });
  afterAll(async () => {
    await demo?.stop();
    await cleanup();
  });

  it('prints commands that work exactly as printed: send with swaks and Python, read over POP3', async () => {
    const [smtp, submission, pop3] = [await freePort(), await freePort(), await freePort()];
    const root = join(dir, 'var', 'quail');
    demo = new Daemon(['demo', '--root', root, '--smtp', `127.0.0.1:${smtp}`, '--submission', `127.0.0.1:${submission}`, '--pop3', `127.0.0.1:${pop3}`]);
    await demo.waitFor(/serving with plugins/, 60_000);
    const password = (await demo.waitFor(/^ {2}password {2}(\S+)$/m))[1]!;
    const command = (after: RegExp) => {
      const lines = demo!.output.split('\n');
      const i = lines.findIndex((l) => after.test(l));
      return lines[i + 1]!.trim();
    };
    const swaks = command(/^Send a message with swaks:/);
    const pySend = command(/^or with Python:/);
    const pyRead = command(/^Read it over POP3 with Python:/);
    const submit = command(/^Submit as the user/);
    expect(swaks).toContain(`--server 127.0.0.1:${smtp}`);
    expect(pyRead).toContain(password);

    const swaksOut = await sh('sh', ['-c', swaks], { timeout: 60_000 });
    expect(swaksOut.stdout).toMatch(/<- {2}250 ok \d+ qp \d+/);
    await sh('sh', ['-c', pySend], { timeout: 60_000 });
    const read = await eventually(async () => {
      const { stdout } = await sh('sh', ['-c', pyRead], { timeout: 60_000 });
      return /hello from (swaks|python)/.test(stdout) ? stdout : undefined;
    }, 'the demo mailbox to receive mail');
    expect(read).toMatch(/^Delivered-To: demo@example\.test$/m);
    const submitted = await sh('sh', ['-c', submit], { timeout: 60_000 });
    expect(submitted.stdout).toMatch(/<~ {2}235 /);
    expect(submitted.stdout).toMatch(/<~ {2}250 ok \d+ qp \d+/);

    expect(await demo.stop()).toBe(0);
    demo = undefined;
    const again = await quail(['demo', '--root', root, '--no-start']);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/^quail demo: reusing /);
    expect(again.stdout).toContain(`127.0.0.1:${smtp}`);
  }, 180_000);

  it('keeps the demo password when run again on the same root', async () => {
    const { dir: other, cleanup: done } = await tempDir();
    const root = join(other, 'var', 'quail');
    const first = await quail(['demo', '--no-start', '--root', root]);
    const second = await quail(['demo', '--no-start', '--root', root]);
    const pw = (text: string) => /^ {2}password {2}(\S+)$/m.exec(text)?.[1];
    expect(first.code).toBe(0);
    expect(first.stdout).toContain(`quail demo: created ${root}`);
    expect(second.stdout).toContain(`quail demo: reusing ${root}`);
    expect(pw(first.stdout)).toMatch(/^\S{8,}$/);
    expect(pw(second.stdout)).toBe(pw(first.stdout));
    await done();
  });
});
