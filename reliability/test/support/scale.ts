/**
 * Counts in this suite are sized for CI (the whole suite under 10 minutes on 2 cores).
 * QUAIL_RELIABILITY_SCALE=10 multiplies them for a longer local run.
 */
export const SCALE = Math.max(0.1, Number(process.env.QUAIL_RELIABILITY_SCALE ?? '1') || 1);

/** `n` scaled, at least 1. */
export function scaled(n: number): number {
  return Math.max(1, Math.round(n * SCALE));
}
