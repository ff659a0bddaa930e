import type { Envelope, QueueOrigin, Route } from '@quail/core';

/** Thrown when a queue file cannot be understood; the file is quarantined. */
export class CorruptQueueFile extends Error {
  constructor(
    readonly path: string,
    reason: string,
  ) {
    super(`${path}: ${reason}`);
    this.name = 'CorruptQueueFile';
  }
}

/** The message left the queue while it was being looked up (finished in the meantime). */
export class MessageGone extends Error {
  constructor(readonly id: string) {
    super(`message ${id} is no longer in the queue`);
    this.name = 'MessageGone';
  }
}

/** Longest envelope address qmail-queue takes (it refuses 1003 bytes and more). */
export const MAX_ADDRESS = 1002;

/** What `todo/<id>` holds: the envelope as committed. */
export interface EnvelopeRecord {
  v: 1;
  id: string;
  qp: number;
  origin: QueueOrigin;
  /** Acceptance time (ms). */
  at: number;
  sender: string;
  recipients: string[];
}

/** One routed recipient in `info/<s>/<id>`. */
export interface RoutedRecipient {
  recipient: string;
  route: Route;
}

/** What `info/<s>/<id>` holds: the preprocessed message. */
export interface InfoRecord {
  v: 1;
  id: string;
  qp: number;
  origin: QueueOrigin;
  /** Birth time (ms): retries are computed from it. */
  birth: number;
  size: number;
  sender: string;
  recipients: RoutedRecipient[];
}

/**
 * One line of `state/<s>/<id>`, the message's append-only delivery log:
 * `done` (success or permanent failure), `defer` (temporary failure and the
 * next attempt time), `bounced` (the bounce was queued).
 */
export type StateEntry =
  | { k: 'done'; i: number; ok: boolean; t: string }
  | { k: 'defer'; i: number; t: string; next: number }
  | { k: 'bounced'; id: string };

/** The state of one recipient after replaying the log. */
export interface RecipientProgress {
  done: boolean;
  ok: boolean;
  attempts: number;
  next: number;
  text?: string;
}

const isString = (v: unknown): v is string => typeof v === 'string';
const isInt = (v: unknown): v is number => Number.isSafeInteger(v);

export function encodeEnvelope(rec: EnvelopeRecord): string {
  return `${JSON.stringify(rec)}\n`;
}

function parseJson(path: string, data: Buffer): Record<string, unknown> {
  const text = data.toString('utf8');
  if (!text.endsWith('\n')) throw new CorruptQueueFile(path, 'truncated (no final newline)');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new CorruptQueueFile(path, `not valid JSON (${(err as Error).message})`);
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new CorruptQueueFile(path, 'not a JSON object');
  return value as Record<string, unknown>;
}

function checkOrigin(path: string, v: unknown): QueueOrigin {
  const o = v as Record<string, unknown> | undefined;
  if (o?.kind === 'network' && isString(o.remoteAddress)) return { kind: 'network', remoteAddress: o.remoteAddress };
  if (o?.kind === 'local' && isInt(o.uid)) return { kind: 'local', uid: o.uid };
  if (o?.kind === 'bounce' || o?.kind === 'forward') return { kind: o.kind };
  throw new CorruptQueueFile(path, 'bad origin');
}

export function decodeEnvelope(path: string, id: string, data: Buffer): EnvelopeRecord {
  const o = parseJson(path, data);
  if (o.v !== 1) throw new CorruptQueueFile(path, `unknown version ${String(o.v)}`);
  if (o.id !== id) throw new CorruptQueueFile(path, `id ${String(o.id)} does not match the file name`);
  if (!isInt(o.qp) || !isInt(o.at) || !isString(o.sender)) throw new CorruptQueueFile(path, 'missing qp, at or sender');
  if (!Array.isArray(o.recipients) || !o.recipients.every(isString)) throw new CorruptQueueFile(path, 'bad recipients');
  return { v: 1, id, qp: o.qp, origin: checkOrigin(path, o.origin), at: o.at, sender: o.sender, recipients: o.recipients };
}

export function encodeInfo(rec: InfoRecord): string {
  return `${JSON.stringify(rec)}\n`;
}

function checkRoute(path: string, v: unknown): RoutedRecipient {
  const r = v as { recipient?: unknown; route?: Record<string, unknown> } | undefined;
  const route = r?.route;
  if (!r || !isString(r.recipient) || !route || !isString(route.channel) || !isString(route.recipient) || !isString(route.address)) {
    throw new CorruptQueueFile(path, 'bad recipient record');
  }
  if (route.prefix !== undefined && !isString(route.prefix)) throw new CorruptQueueFile(path, 'bad route prefix');
  return {
    recipient: r.recipient,
    route: { channel: route.channel, recipient: route.recipient, address: route.address, ...(route.prefix !== undefined && { prefix: route.prefix }) },
  };
}

export function decodeInfo(path: string, id: string, data: Buffer): InfoRecord {
  const o = parseJson(path, data);
  if (o.v !== 1) throw new CorruptQueueFile(path, `unknown version ${String(o.v)}`);
  if (o.id !== id) throw new CorruptQueueFile(path, `id ${String(o.id)} does not match the file name`);
  if (!isInt(o.qp) || !isInt(o.birth) || !isInt(o.size) || o.size < 0 || !isString(o.sender)) {
    throw new CorruptQueueFile(path, 'missing qp, birth, size or sender');
  }
  if (!Array.isArray(o.recipients)) throw new CorruptQueueFile(path, 'bad recipients');
  return {
    v: 1,
    id,
    qp: o.qp,
    origin: checkOrigin(path, o.origin),
    birth: o.birth,
    size: o.size,
    sender: o.sender,
    recipients: o.recipients.map((r) => checkRoute(path, r)),
  };
}

export function encodeState(entries: StateEntry[]): string {
  return entries.map((e) => `${JSON.stringify(e)}\n`).join('');
}

/**
 * Replays a state log. A last line without its newline is an append cut short by
 * a crash and is ignored (the attempt is simply made again); anything else that
 * does not parse means the file is corrupt.
 */
export function replayState(path: string, data: Buffer, recipients: number): { progress: RecipientProgress[]; bounced?: string } {
  const progress: RecipientProgress[] = Array.from({ length: recipients }, () => ({ done: false, ok: false, attempts: 0, next: 0 }));
  let bounced: string | undefined;
  const text = data.toString('utf8');
  const lines = text.split('\n');
  lines.pop();
  lines.forEach((line, n) => {
    let e: Record<string, unknown>;
    try {
      e = JSON.parse(line) as Record<string, unknown>;
    } catch {
      throw new CorruptQueueFile(path, `line ${n + 1} is not valid JSON`);
    }
    if (e.k === 'bounced' && isString(e.id)) {
      bounced = e.id;
      return;
    }
    if (!isInt(e.i) || e.i < 0 || e.i >= recipients || !isString(e.t)) throw new CorruptQueueFile(path, `line ${n + 1} is not a delivery record`);
    const p = progress[e.i]!;
    if (e.k === 'done' && typeof e.ok === 'boolean') {
      p.done = true;
      p.ok = e.ok;
      p.attempts++;
      p.text = e.t;
    } else if (e.k === 'defer' && isInt(e.next)) {
      p.attempts++;
      p.next = e.next;
      p.text = e.t;
    } else {
      throw new CorruptQueueFile(path, `line ${n + 1} is not a delivery record`);
    }
  });
  return { progress, ...(bounced !== undefined && { bounced }) };
}

/** Why an envelope can never be queued (a permanent refusal), or undefined when it is fine. */
export function envelopeProblem(envelope: Envelope): string | undefined {
  const all = [envelope.sender, ...envelope.recipients];
  if (all.some((a) => typeof a !== 'string')) return 'envelope addresses must be strings (#5.1.3)';
  if (all.some((a) => a.length > MAX_ADDRESS)) return 'envelope address too long for qq (#5.1.3)';
  if (all.some((a) => /[\0\r\n]/.test(a))) return 'envelope address contains NUL, CR or LF (#5.1.3)';
  return undefined;
}
