import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { cp, mkdir, readFile, writeFile, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tai64n } from '../src/tai64n.js';
import { CLI, assertBuilt, eventually, quail, tempDir } from './helpers.js';

const run = promisify(execFile);
const SERVICE = fileURLToPath(new URL('../service/', import.meta.url));

async function has(program: string): Promise<boolean> {
  return run('sh', ['-c', `command -v ${program}`]).then(
    () => true,
    () => false,
  );
}
const daemontools = (await has('svscan')) && (await has('multilog')) && (await has('tai64nlocal'));

describe.skipIf(!daemontools)('the daemontools service scripts, run by real svscan/supervise/multilog', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let svscan: ChildProcess | undefined;
  let service: string;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    assertBuilt();
    ({ dir, cleanup } = await tempDir());
    const bin = join(dir, 'bin');
    await mkdir(bin);
    await writeFile(join(bin, 'quail'), `#!/bin/sh\nexec "${process.execPath}" "${CLI}" "$@"\n`);
    await chmod(join(bin, 'quail'), 0o755);
    env = { ...process.env, PATH: `${bin}:${process.env.PATH}` };
    const root = join(dir, 'root');
    await quail(['init', root, '--me', 'mx.test', '--smtp', '127.0.0.1:0', '--submission', '127.0.0.1:0', '--pop3', '127.0.0.1:0']);
    service = join(dir, 'service', 'quail');
    await cp(join(SERVICE, 'daemontools', 'quail'), service, { recursive: true });
    await mkdir(join(service, 'env'));
    await writeFile(join(service, 'env', 'QUAIL_ROOT'), `${root}\n`);
  });

  afterAll(async () => {
    await run('svc', ['-dx', service, join(service, 'log')], { env }).catch(() => undefined);
    svscan?.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 500));
    await cleanup();
  });

  it('starts under svscan, logs through multilog t, and obeys svc -h, -a and -d', async () => {
    svscan = spawn('svscan', [join(dir, 'service')], { env, stdio: 'ignore' });
    const current = join(service, 'log', 'main', 'current');
    const log = () => readFile(current, 'utf8').catch(() => '');
    await eventually(async () => (await log()).includes('serving with plugins'), 'the service to come up', 60_000);
    for (const line of (await log()).trim().split('\n')) expect(line).toMatch(/^@4000[0-9a-f]{20} /);
    expect((await run('svstat', [service], { env })).stdout).toMatch(/: up \(pid \d+\) \d+ seconds/);

    await run('svc', ['-h', service], { env });
    await eventually(async () => (await log()).includes('control files reloaded'), 'svc -h to reload');
    await run('svc', ['-a', service], { env });
    await eventually(async () => (await log()).includes('doqueue: retrying every deferred delivery now'), 'svc -a to retry the queue');

    const tai = (await run('sh', ['-c', `tail -1 ${current} | TZ=UTC tai64nlocal`], { env })).stdout;
    expect(tai).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{9} /);

    await run('svc', ['-d', service], { env });
    await eventually(async () => /: down \d+ seconds/.test((await run('svstat', [service], { env })).stdout), 'svc -d to stop the service', 60_000);
    expect(await log()).toMatch(/supervisor exits \(0\)/);
  }, 120_000);
});

describe.skipIf(!daemontools)("quail's TAI64N stamps read by daemontools' tai64nlocal", () => {
  it('gives the same moment back', async () => {
    const ms = Date.UTC(2023, 10, 14, 22, 13, 20, 250);
    const { stdout } = await run('sh', ['-c', `printf '%s hello\\n' ${tai64n(ms)} | TZ=UTC tai64nlocal`]);
    expect(stdout).toBe('2023-11-14 22:13:20.250000500 hello\n');
  });
});

const systemdAnalyze = await has('systemd-analyze');

describe.skipIf(!systemdAnalyze)('the systemd unit', () => {
  it('passes systemd-analyze verify', async () => {
    const r = await run('systemd-analyze', ['verify', join(SERVICE, 'quail.service')]).catch((e: { stdout: string; stderr: string; code: number }) => e);
    expect('code' in r ? r.code : 0).toBe(0);
    expect(r.stderr).toBe('');
  });
});
