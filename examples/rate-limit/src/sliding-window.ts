/** Keys tracked at most; beyond it, keys with nothing left in their window are dropped first, then the oldest. */
export const MAX_KEYS = 50_000;

/**
 * Counts events per key over a sliding window: `take` allows an event when
 * fewer than `limit` happened in the last `windowMs`, and records it.
 */
export class SlidingWindow {
  readonly #events = new Map<string, number[]>();

  /** Records `count` events for `key` at `now` if they fit in the limit; returns false (recording nothing) when they do not. */
  take(key: string, now: number, limit: number, windowMs: number, count = 1): boolean {
    const times = (this.#events.get(key) ?? []).filter((t) => now - t < windowMs);
    if (times.length + count > limit) {
      this.#events.set(key, times);
      return false;
    }
    for (let i = 0; i < count; i++) times.push(now);
    this.#events.delete(key);
    this.#events.set(key, times);
    this.#bound(now, windowMs);
    return true;
  }

  /** Events of `key` in the window ending at `now`. */
  count(key: string, now: number, windowMs: number): number {
    return (this.#events.get(key) ?? []).filter((t) => now - t < windowMs).length;
  }

  get keys(): number {
    return this.#events.size;
  }

  #bound(now: number, windowMs: number): void {
    if (this.#events.size <= MAX_KEYS) return;
    for (const [key, times] of this.#events) if (times.every((t) => now - t >= windowMs)) this.#events.delete(key);
    while (this.#events.size > MAX_KEYS) this.#events.delete(this.#events.keys().next().value!);
  }
}
