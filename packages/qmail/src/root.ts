import { resolve } from 'node:path';

/** The server root: `--root`, else `QUAIL_ROOT`, else /var/quail for root and ./var/quail for anyone else. */
export function defaultRoot(explicit?: string): string {
  if (explicit) return resolve(explicit);
  const fromEnv = process.env.QUAIL_ROOT;
  if (fromEnv) return resolve(fromEnv);
  return process.getuid?.() === 0 ? '/var/quail' : resolve('var/quail');
}

/** Paths inside a root that the daemon and the command share. */
export function rootPaths(root: string) {
  return {
    log: resolve(root, 'log'),
    /** The control socket (owner-only) that `quail ctl` talks to. */
    socket: resolve(root, 'quail.sock'),
    pid: resolve(root, 'quail.pid'),
  };
}
