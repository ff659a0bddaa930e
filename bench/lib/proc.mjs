// Child processes started by the harness, and what /proc says about them.
// Every process is started in its own process group and remembered, so that
// stopAll() (also run on exit, SIGINT and SIGTERM) can end each one by its id.
import { spawn, fork } from 'node:child_process';
import { closeSync, createWriteStream, openSync, readFileSync, readdirSync } from 'node:fs';
import { once } from 'node:events';

const live = new Map(); // pid -> { name, child }

function remember(name, child) {
  live.set(child.pid, { name, child });
  child.once('exit', () => live.delete(child.pid));
  return child;
}

/**
 * Sends a child's stdout and stderr through a pipe into `log`, as a supervisor's
 * logger (multilog, journald) would: the server writes to a pipe, never to a
 * file on the disk it is fsyncing.
 */
function logTo(child, log) {
  if (!log) return;
  const out = createWriteStream(log, { flags: 'a' });
  let open = 2;
  for (const stream of [child.stdout, child.stderr]) {
    stream.pipe(out, { end: false });
    stream.once('end', () => {
      if (--open === 0) out.end();
    });
  }
}

/**
 * Starts a long-running peer or server; stdout and stderr go to `log` (a file
 * path) through a pipe, or, with `logFile`, straight into the file (Postfix's
 * start-fg wants that; its logging is done by its own postlogd process anyway).
 */
export function startProcess(name, command, args, { log, cwd, env, logFile = false } = {}) {
  const fd = log && logFile ? openSync(log, 'a') : undefined;
  const out = fd ?? (log ? 'pipe' : 'ignore');
  const child = spawn(command, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', out, out], detached: true });
  if (fd !== undefined) closeSync(fd);
  else logTo(child, log);
  return remember(name, child);
}

/** Starts a Node module with an IPC channel (quail servers run this way). */
export function forkProcess(name, modulePath, args, { log, cwd, env, execArgv = [] } = {}) {
  const child = fork(modulePath, args, {
    cwd,
    env: { ...process.env, ...env },
    stdio: ['ignore', log ? 'pipe' : 'ignore', log ? 'pipe' : 'ignore', 'ipc'],
    detached: true,
    execArgv,
  });
  logTo(child, log);
  return remember(name, child);
}

/** Runs a command to completion; resolves with stdout, stderr, code and wall time in ms. */
export function run(command, args, { cwd, env, timeoutMs = 300_000, input } = {}) {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(command, args, { cwd, env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    remember(command, child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      killGroup(child.pid, 'SIGKILL');
      reject(new Error(`${command} ${args.join(' ')}: no exit after ${timeoutMs} ms`));
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      resolve({ code, signal, stdout, stderr, ms });
    });
    if (input !== undefined) child.stdin.end(input);
    else child.stdin.end();
  });
}

/** Like run, but rejects unless the exit code is 0. */
export async function runOk(command, args, options) {
  const r = await run(command, args, options);
  if (r.code !== 0) throw new Error(`${command} ${args.join(' ')} exited ${r.code ?? r.signal}: ${(r.stderr || r.stdout).trim().slice(-800)}`);
  return r;
}

function killGroup(pid, signal) {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

/** Stops one started process: SIGTERM to its group, SIGKILL after `graceMs`. */
export async function stopProcess(child, graceMs = 5000) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  killGroup(child.pid, 'SIGTERM');
  const timer = setTimeout(() => killGroup(child.pid, 'SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
  // members of the group that outlived the leader (Postfix and Dovecot children)
  killGroup(child.pid, 'SIGKILL');
}

export async function stopAll() {
  await Promise.all([...live.values()].map(({ child }) => stopProcess(child, 3000)));
}

function killAllNow() {
  for (const pid of live.keys()) killGroup(pid, 'SIGKILL');
}

process.on('exit', killAllNow);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    killAllNow();
    process.exit(130);
  });
}

/* ------------------------------------------------------------------ /proc */

const CLK_TCK = 100;
const PAGE_KIB = 4;

function readStat(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    // f[0] is field 3 (state): field n is f[n - 3]
    return {
      pid,
      ppid: Number(f[1]),
      cpuTicks: Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]),
      rssKiB: Number(f[21]) * PAGE_KIB,
    };
  } catch {
    return undefined;
  }
}

/** The pid and every descendant of it. */
export function processTree(rootPid) {
  const all = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = readStat(Number(name));
    if (s) all.push(s);
  }
  const children = new Map();
  for (const s of all) {
    if (!children.has(s.ppid)) children.set(s.ppid, []);
    children.get(s.ppid).push(s);
  }
  const root = all.find((s) => s.pid === rootPid);
  if (!root) return [];
  const out = [root];
  for (let i = 0; i < out.length; i++) out.push(...(children.get(out[i].pid) ?? []));
  return out;
}

function pssKiB(pid) {
  try {
    const m = /^Pss:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/**
 * CPU (user+system of the whole tree, including reaped children) and memory of a
 * server. Differences of two samples give the CPU the server spent in between:
 * a child that exits is reaped by a tree member, which adds its time to cutime.
 */
export function sampleTree(rootPid, { pss = false } = {}) {
  const tree = processTree(rootPid);
  let ticks = 0;
  let rss = 0;
  let p = 0;
  for (const s of tree) {
    ticks += s.cpuTicks;
    rss += s.rssKiB;
    if (pss) p += pssKiB(s.pid);
  }
  return { cpuMs: (ticks * 1000) / CLK_TCK, rssKiB: rss, pssKiB: p, processes: tree.length };
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
