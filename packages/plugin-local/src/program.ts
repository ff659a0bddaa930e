import { spawn } from 'node:child_process';
import type { Readable } from 'node:stream';

export type ProgramOutcome =
  /** 0: delivered; 99: delivered, and the following lines are skipped. */
  | { kind: 'success'; stop: boolean; output: string }
  | { kind: 'failure'; output: string }
  | { kind: 'deferral'; output: string };

export interface ProgramRun {
  command: string;
  cwd: string;
  env: Record<string, string>;
  /** Account to run as; left out when the daemon already runs as it. */
  uid?: number;
  gid?: number;
  /** The message (without Return-Path and Delivered-To). */
  input: () => Readable;
  timeoutMs: number;
  signal?: AbortSignal;
}

/** Exit codes qmail-local treats as permanent failures. */
const PERMANENT = new Set([64, 65, 70, 76, 77, 78, 100, 112]);
/** Program output kept for the delivery report. */
const OUTPUT_LIMIT = 1000;

/** qmail-local's program delivery: `/bin/sh -c command`, message on stdin, exit code decides. */
export function runProgram(run: ProgramRun): Promise<ProgramOutcome> {
  return new Promise((resolve) => {
    let output = '';
    let settled = false;
    const finish = (outcome: ProgramOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      run.signal?.removeEventListener('abort', onAbort);
      resolve(outcome);
    };
    const child = spawn('/bin/sh', ['-c', run.command], {
      cwd: run.cwd,
      env: run.env,
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
      ...(run.uid !== undefined && { uid: run.uid }),
      ...(run.gid !== undefined && { gid: run.gid }),
    });
    /** Kills the shell and everything it started (its own process group). */
    const killAll = () => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    };
    const timer = setTimeout(() => {
      killAll();
      finish({ kind: 'deferral', output: 'Timeout on program delivery. (#4.3.0)' });
    }, run.timeoutMs);
    const onAbort = () => {
      killAll();
      finish({ kind: 'deferral', output: 'Delivery interrupted: the server is stopping. (#4.3.0)' });
    };
    run.signal?.addEventListener('abort', onAbort, { once: true });
    const keep = (data: Buffer) => {
      if (output.length < OUTPUT_LIMIT) output = (output + data.toString('utf8')).slice(0, OUTPUT_LIMIT);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', (err) => finish({ kind: 'deferral', output: `Unable to run /bin/sh: ${err.message}. (#4.3.0)` }));
    child.stdin.on('error', () => undefined);
    const input = run.input();
    input.on('error', () => child.stdin.destroy());
    input.pipe(child.stdin);
    child.on('close', (code, signal) => {
      input.destroy();
      const text = output.trim().replace(/\s*\n\s*/g, '/');
      if (signal !== null || code === null) return finish({ kind: 'deferral', output: 'Aack, child crashed. (#4.3.0)' });
      if (code === 0) return finish({ kind: 'success', stop: false, output: text });
      if (code === 99) return finish({ kind: 'success', stop: true, output: text });
      if (PERMANENT.has(code)) return finish({ kind: 'failure', output: text || `Program exited ${code}. (#5.3.0)` });
      finish({ kind: 'deferral', output: text || `Program exited ${code}. (#4.3.0)` });
    });
  });
}
