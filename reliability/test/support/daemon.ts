import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));
/** The built `quail` command (run `npx tsc -b` at the repository root first). */
export const QUAIL_CLI = join(here, '..', '..', '..', 'packages', 'qmail', 'dist', 'cli.js');
export const DOMAIN = 'example.test';
export const ME = 'mx.example.test';

/** Every daemon started by this process, so that a failing test still leaves nothing running. */
const running = new Set<Daemon>();
process.once('exit', () => {
  for (const d of running) d.killGroup('SIGKILL');
});

/** Runs `quail <args>`; resolves with stdout, rejects with the one-line error. */
export async function quail(args: string[], options: { env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  const { stdout } = await run(process.execPath, [QUAIL_CLI, ...args], { env: { ...process.env, ...options.env }, maxBuffer: 16 * 1024 * 1024, timeout: 60_000, killSignal: 'SIGKILL' });
  return stdout;
}

export interface RootOptions {
  /** `user: password` accounts to add to example.test. */
  users?: Record<string, string>;
  /** Control files to write after init (name -> content). */
  control?: Record<string, string>;
  /** Directory to create the root in (a small tmpfs for the disk-full test). */
  parent?: string;
}

/** A server root made by `quail init` with ephemeral loopback listeners. */
export async function makeRoot(options: RootOptions = {}): Promise<{ root: string; cleanup: () => Promise<void> }> {
  const parent = await mkdtemp(join(options.parent ?? tmpdir(), 'quail-rel-'));
  const root = join(parent, 'root');
  await quail(['init', root, '--domain', DOMAIN, '--smtp', '127.0.0.1:0', '--submission', '127.0.0.1:0', '--pop3', '127.0.0.1:0', '--me', ME]);
  for (const [user, password] of Object.entries(options.users ?? {})) await quail(['vadduser', `${user}@${DOMAIN}`, password, '--root', root]);
  const { writeFile } = await import('node:fs/promises');
  for (const [name, content] of Object.entries(options.control ?? {})) await writeFile(join(root, 'control', name), content);
  return { root, cleanup: () => rm(parent, { recursive: true, force: true }) };
}

export interface Ports {
  smtp: number;
  submission: number;
  pop3: number;
}

export interface DaemonOptions {
  /** Open-files limit for the daemon (`ulimit -n`). */
  nofile?: number;
  /** Extra arguments for `quail start`. */
  args?: string[];
  /** How long to wait for the worker to serve. */
  startTimeoutMs?: number;
}

/** `quail start` in its own process group; its log lines are kept for the test to read. */
export class Daemon {
  readonly child: ChildProcess;
  readonly log: string[] = [];
  ports?: Ports;
  workerPid?: number;
  exitCode: number | null | undefined;
  exitSignal: NodeJS.Signals | null | undefined;
  readonly exited: Promise<void>;
  #waiters: Array<() => void> = [];

  private constructor(child: ChildProcess) {
    this.child = child;
    running.add(this);
    this.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        this.exitCode = code;
        this.exitSignal = signal;
        running.delete(this);
        this.#wake();
        resolve();
      }),
    );
    let partial = '';
    const onData = (chunk: Buffer) => {
      partial += chunk.toString('utf8');
      const lines = partial.split('\n');
      partial = lines.pop()!;
      for (const line of lines) this.#line(line);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
  }

  static async start(root: string, options: DaemonOptions = {}): Promise<Daemon> {
    const argv = [QUAIL_CLI, 'start', '--root', root, ...(options.args ?? [])].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
    const limit = options.nofile ? `ulimit -n ${options.nofile} && ` : '';
    const child = spawn('/bin/sh', ['-c', `${limit}exec '${process.execPath}' ${argv}`], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const daemon = new Daemon(child);
    await daemon.waitFor(() => daemon.ports !== undefined && daemon.serving, options.startTimeoutMs ?? 30_000, 'the worker to serve');
    return daemon;
  }

  serving = false;

  #line(line: string): void {
    this.log.push(line);
    if (this.log.length > 5000) this.log.splice(0, 1000);
    const listen = /\b(smtp|submission|pop3) listening on [^\s]+:(\d+)/.exec(line);
    if (listen) {
      this.ports ??= { smtp: 0, submission: 0, pop3: 0 };
      this.ports[listen[1] as keyof Ports] = Number(listen[2]);
    }
    const worker = /worker started \(pid (\d+)\)/.exec(line);
    if (worker) {
      this.workerPid = Number(worker[1]);
      this.serving = false;
    }
    if (/serving with plugins/.test(line)) this.serving = true;
    this.#wake();
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  /** Waits until `test()` holds (re-checked on each log line and at exit). */
  async waitFor(test: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!test()) {
      if (this.exitCode !== undefined) throw new Error(`quail start exited (${this.exitCode ?? this.exitSignal}) while waiting for ${what}:\n${this.log.slice(-20).join('\n')}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}:\n${this.log.slice(-20).join('\n')}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 250));
        this.#waiters.push(() => (clearTimeout(t), resolve()));
      });
    }
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Signals the supervisor and the worker (the whole process group). */
  killGroup(signal: NodeJS.Signals): void {
    if (this.exitCode !== undefined) return;
    try {
      process.kill(-this.pid, signal);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
    }
  }

  /** Signals the supervisor only (as systemd's KillMode=mixed does). */
  signal(signal: NodeJS.Signals): void {
    if (this.exitCode === undefined) this.child.kill(signal);
  }

  /** Graceful stop: TERM to the supervisor, SIGKILL to the group after `timeoutMs`. */
  async stop(timeoutMs = 30_000): Promise<{ graceful: boolean; ms: number }> {
    const started = Date.now();
    if (this.exitCode !== undefined) return { graceful: true, ms: 0 };
    this.signal('SIGTERM');
    const timer = setTimeout(() => this.killGroup('SIGKILL'), timeoutMs);
    await this.exited;
    clearTimeout(timer);
    return { graceful: this.exitSignal === null, ms: Date.now() - started };
  }

  /** Peak resident memory of the worker so far (VmHWM), in bytes; undefined once it is gone. */
  async workerPeakRss(): Promise<number | undefined> {
    if (!this.workerPid) return undefined;
    try {
      const status = await readFile(`/proc/${this.workerPid}/status`, 'utf8');
      const m = /VmHWM:\s+(\d+) kB/.exec(status);
      return m ? Number(m[1]) * 1024 : undefined;
    } catch {
      return undefined;
    }
  }
}

/** Kills every daemon still running (afterAll / afterEach). */
export async function killAll(): Promise<void> {
  const all = [...running];
  for (const d of all) d.killGroup('SIGKILL');
  await Promise.all(all.map((d) => d.exited));
}
