/** qmail-send's retry constants: attempts come at (c*k)^2 seconds after birth. */
export const RETRY_STEP = { local: 10, remote: 20 } as const;

/**
 * qmail's RetrySchedule: from the birth time and the start of a pass, the time
 * of the next attempt. n = floor(sqrt(age)) + c; next = birth + n^2 (seconds).
 */
export function nextAttempt(birthMs: number, nowMs: number, channel: string): number {
  const c = channel === 'local' ? RETRY_STEP.local : RETRY_STEP.remote;
  const age = Math.max(0, Math.floor((nowMs - birthMs) / 1000));
  const n = nowMs < birthMs ? c : Math.floor(Math.sqrt(age)) + c;
  return birthMs + n * n * 1000;
}

/** A pass is "dying" once the message is older than queuelifetime: temporary failures become permanent. */
export function isDying(birthMs: number, nowMs: number, queueLifetimeSeconds: number): boolean {
  return nowMs > birthMs + queueLifetimeSeconds * 1000;
}

export const DYING_TEXT = "I'm not going to try again; this message has been in the queue too long.";
