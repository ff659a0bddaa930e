import type { ControlResponse } from './control-socket.js';

/** Supervisor → worker: a command for the running server. */
export interface WorkerCommand {
  type: 'cmd';
  id: number;
  cmd: 'qstat' | 'queue' | 'doqueue' | 'reload' | 'pause' | 'cont' | 'inject';
  sender?: string;
  recipients?: string[];
  uid?: number;
  body?: Buffer;
}

/** Worker → supervisor. */
export type WorkerMessage = { type: 'ready'; plugins: string[] } | { type: 'reply'; id: number; response: ControlResponse };

/** Exit codes of the worker: a permanent start-up failure (bad config) is not worth a quick retry. */
export const WORKER_EXIT = { ok: 0, permanent: 100, temporary: 111 } as const;
