import { fork, type ChildProcess } from 'node:child_process';
import { unlinkSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createLogger, type LogFormat, type Logger } from '@quail/core';
import { rootPaths } from '../root.js';
import { checkControlPermissions } from './permissions.js';
import { claimSocket, listenControl, type ControlRequest, type ControlResponse } from './control-socket.js';
import { WORKER_EXIT, type WorkerCommand, type WorkerMessage } from './ipc.js';
import { MultilogWriter, StdoutSink, type LineSink, type LogStamp } from './multilog.js';

export interface DaemonOptions {
  root: string;
  logFormat?: LogFormat;
  /** Rotated log directory (multilog); stdout when absent. */
  logDir?: string;
  logStamp?: LogStamp;
  logSize?: number;
  logCount?: number;
  /** Seconds sessions and deliveries get to finish on stop. */
  stopTimeout?: number;
}

/** Restart back-off: at least 1 s between starts (supervise's rule), doubling up to 30 s while the worker keeps dying young. */
const MIN_BACKOFF = 1000;
const MAX_BACKOFF = 30_000;
/** A worker that ran this long is healthy: its next crash restarts after the minimum back-off. */
const HEALTHY_AFTER = 10_000;

const WORKER = fileURLToPath(new URL('./worker.js', import.meta.url));

/**
 * svscan + supervise inside one process tree: this process keeps the control
 * socket, the pid file and the log, and runs the server in a worker child that
 * it restarts after a back-off when it dies. SIGTERM/SIGINT stop gracefully,
 * SIGHUP reloads, SIGALRM retries the queue.
 */
export class Supervisor {
  readonly #options: DaemonOptions;
  readonly #paths: ReturnType<typeof rootPaths>;
  readonly #sink: LineSink;
  readonly log: Logger;
  #worker: ChildProcess | undefined;
  #workerReady = false;
  #workerStarted = 0;
  #startedAt = Date.now();
  #restarts = 0;
  #backoff = MIN_BACKOFF;
  #everReady = false;
  #stopping = false;
  /** Waiting `ctl restart` calls, answered when the replacement worker serves or fails. */
  #restarting: Array<(response: ControlResponse) => void> = [];
  /** The worker a restart asked to stop: its exit starts the replacement at once. */
  #retiring: ChildProcess | undefined;
  #control: Server | undefined;
  #pending = new Map<number, (r: ControlResponse) => void>();
  #nextId = 1;
  #restartTimer: NodeJS.Timeout | undefined;
  /** Settles once the current worker's output is drained (or 2 s after it exited). */
  #drained: Promise<void> = Promise.resolve();
  #exit: (code: number) => void = () => undefined;

  constructor(options: DaemonOptions) {
    this.#options = options;
    this.#paths = rootPaths(options.root);
    this.#sink = options.logDir
      ? new MultilogWriter({
          dir: options.logDir,
          stamp: options.logStamp ?? 'tai64n',
          ...(options.logSize !== undefined && { size: options.logSize }),
          ...(options.logCount !== undefined && { count: options.logCount }),
        })
      : new StdoutSink(options.logStamp ?? 'none');
    this.log = createLogger({ format: options.logFormat ?? 'pretty', write: (line) => this.#sink.write(line) }).child({ plugin: 'supervise' });
  }

  /** Runs until stopped; resolves with the exit code. */
  async run(): Promise<number> {
    const done = new Promise<number>((resolve) => (this.#exit = resolve));
    await checkControlPermissions(this.#options.root);
    await claimSocket(this.#paths.socket);
    this.#control = await listenControl(this.#paths.socket, (req, body) => this.#command(req, body));
    writeFileSync(this.#paths.pid, `${process.pid}\n`);
    process.on('SIGTERM', () => void this.stop());
    process.on('SIGINT', () => void this.stop());
    process.on('SIGHUP', () => void this.#toWorker({ cmd: 'reload' }));
    process.on('SIGALRM', () => void this.#toWorker({ cmd: 'doqueue' }));
    this.log.info(`supervising quail in ${this.#options.root} (pid ${process.pid}, control socket ${this.#paths.socket})`);
    this.#spawn();
    return done;
  }

  #spawn(): void {
    this.#restartTimer = undefined;
    if (this.#stopping) return;
    const worker = fork(WORKER, [], {
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      serialization: 'advanced',
      env: {
        ...process.env,
        QUAIL_ROOT: this.#options.root,
        QUAIL_LOG_FORMAT: this.#options.logFormat ?? 'pretty',
        QUAIL_STOP_TIMEOUT: String(this.#options.stopTimeout ?? 90),
      },
    });
    this.#worker = worker;
    this.#workerReady = false;
    this.#workerStarted = Date.now();
    for (const stream of [worker.stdout!, worker.stderr!]) {
      createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => this.#sink.write(line));
    }
    worker.on('message', (m: WorkerMessage) => this.#fromWorker(m));
    worker.on('error', (err) => this.log.error({ err }, `worker ${worker.pid ?? '(not started)'}: ${err.message}`));
    worker.on('exit', (code, signal) => this.#exited(worker, code, signal));
    this.#drained = new Promise<void>((resolve) => {
      worker.once('close', () => resolve());
      worker.once('exit', () => setTimeout(resolve, 2000).unref());
    });
    this.log.info(`worker started (pid ${worker.pid})`);
  }

  #fromWorker(m: WorkerMessage): void {
    if (m.type === 'ready') {
      this.#workerReady = true;
      this.#everReady = true;
      this.log.info(`worker ${this.#worker?.pid} serving with plugins ${m.plugins.join(', ')}`);
      for (const answer of this.#restarting.splice(0)) answer({ ok: true, text: `quail: restarted (worker pid ${this.#worker?.pid})\n` });
    } else if (m.type === 'reply') {
      this.#pending.get(m.id)?.(m.response);
      this.#pending.delete(m.id);
    }
  }

  #exited(worker: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (worker !== this.#worker) return;
    this.#worker = undefined;
    this.#workerReady = false;
    for (const [id, answer] of this.#pending) {
      answer({ ok: false, error: 'the worker exited before answering', exitCode: 111 });
      this.#pending.delete(id);
    }
    const how = signal ? `signal ${signal}` : `status ${code}`;
    if (this.#stopping) {
      // the worker's last lines reach the log before it closes ('close' follows the drained output)
      void this.#drained.then(() => {
        this.log.info(`worker ${worker.pid} ended (${how})`);
        this.#finish(0);
      });
      return;
    }
    if (!this.#everReady && code === WORKER_EXIT.permanent) {
      void this.#drained.then(() => {
        this.log.fatal(`worker ${worker.pid} could not start (${how}); fix the problem logged above`);
        this.#finish(WORKER_EXIT.permanent);
      });
      return;
    }
    const ranFor = Date.now() - this.#workerStarted;
    const restart = worker === this.#retiring;
    this.#retiring = undefined;
    if (!restart) {
      for (const answer of this.#restarting.splice(0)) answer({ ok: false, error: `the new worker exited (${how}) before serving; see the log`, exitCode: 111 });
    }
    const wait = restart ? 0 : ranFor >= HEALTHY_AFTER ? MIN_BACKOFF : this.#backoff;
    if (!restart) this.#backoff = ranFor >= HEALTHY_AFTER ? MIN_BACKOFF * 2 : Math.min(this.#backoff * 2, MAX_BACKOFF);
    if (!restart) this.log.error(`worker ${worker.pid} died (${how}) after ${Math.round(ranFor / 1000)} s; restarting in ${wait / 1000} s`);
    this.#restarts++;
    this.#restartTimer = setTimeout(() => this.#spawn(), wait);
  }

  /** Graceful stop: the worker closes its listeners and finishes what is in flight, then everything exits. */
  async stop(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    this.log.info('stopping');
    if (this.#restartTimer) clearTimeout(this.#restartTimer);
    const worker = this.#worker;
    if (!worker) return this.#finish(0);
    worker.kill('SIGTERM');
    const grace = ((this.#options.stopTimeout ?? 90) + 10) * 1000;
    setTimeout(() => {
      this.log.error(`worker ${worker.pid} did not stop within ${grace / 1000} s; killing it`);
      worker.kill('SIGKILL');
    }, grace).unref();
  }

  #finish(code: number): void {
    this.#control?.close();
    for (const path of [this.#paths.socket, this.#paths.pid]) {
      try {
        unlinkSync(path);
      } catch {
        // already gone
      }
    }
    this.log.info(`supervisor exits (${code})`);
    this.#sink.close();
    this.#exit(code);
  }

  /** Restarts the worker gracefully: in-flight work finishes, the queue stays on disk, the new worker picks it up. */
  async #restart(): Promise<ControlResponse> {
    const answer = new Promise<ControlResponse>((resolve) => this.#restarting.push(resolve));
    const worker = this.#worker;
    this.log.info('restart requested');
    if (worker) {
      this.#retiring = worker;
      worker.kill('SIGTERM');
    } else if (this.#restartTimer) {
      clearTimeout(this.#restartTimer);
      this.#spawn();
    }
    return answer;
  }

  #toWorker(cmd: Omit<WorkerCommand, 'type' | 'id'>): Promise<ControlResponse> {
    const worker = this.#worker;
    if (!worker || !this.#workerReady) return Promise.resolve({ ok: false, error: 'the server is not running right now (it is being restarted)', exitCode: 111 });
    const id = this.#nextId++;
    return new Promise((resolve) => {
      this.#pending.set(id, resolve);
      worker.send({ ...cmd, type: 'cmd', id } satisfies WorkerCommand);
    });
  }

  #status(): string {
    const now = Date.now();
    const up = Math.floor((now - this.#startedAt) / 1000);
    const w = this.#worker;
    const worker = w && this.#workerReady
      ? `up (pid ${w.pid}) ${Math.floor((now - this.#workerStarted) / 1000)} seconds`
      : w
        ? `starting (pid ${w.pid})`
        : 'down, restarting';
    return `quail: up (pid ${process.pid}) ${up} seconds\nquail/worker: ${worker}, restarts ${this.#restarts}\n`;
  }

  async #command(req: ControlRequest, body: Buffer | undefined): Promise<ControlResponse> {
    switch (req.cmd) {
      case 'ping':
        return { ok: true, text: `${process.pid}\n` };
      case 'state':
        return { ok: true, text: this.#workerReady ? 'serving\n' : this.#worker ? 'starting\n' : 'restarting\n' };
      case 'stat': {
        const q = await this.#toWorker({ cmd: 'qstat' });
        return { ok: true, text: this.#status() + (q.ok ? (q.text ?? '') : `queue: ${q.error}\n`) };
      }
      case 'stop':
        setImmediate(() => void this.stop());
        return { ok: true, text: 'quail: stopping\n' };
      case 'restart':
        return this.#restart();
      case 'inject': {
        const recipients = Array.isArray(req.recipients) ? req.recipients.filter((r): r is string => typeof r === 'string') : [];
        return this.#toWorker({
          cmd: 'inject',
          sender: typeof req.sender === 'string' ? req.sender : '',
          recipients,
          uid: typeof req.uid === 'number' ? req.uid : -1,
          body: body ?? Buffer.alloc(0),
        });
      }
      case 'qstat':
      case 'queue':
      case 'doqueue':
      case 'reload':
      case 'pause':
      case 'cont':
        return this.#toWorker({ cmd: req.cmd });
      default:
        return { ok: false, error: `unknown control command: ${String(req.cmd).slice(0, 40)}`, exitCode: 100 };
    }
  }
}
