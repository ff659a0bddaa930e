import { describe, expect, it } from 'vitest';
import { isDying, nextAttempt } from '@quail/plugin-queue';

const birth = Date.UTC(2026, 0, 1);
const at = (s: number) => birth + s * 1000;

/** Walks the schedule as qmail-send does: each attempt at the previous pass's "next". */
function attempts(channel: string, until: number): number[] {
  const out = [0];
  let now = birth;
  for (;;) {
    now = nextAttempt(birth, now, channel);
    if ((now - birth) / 1000 > until) return out;
    out.push((now - birth) / 1000);
  }
}

describe('retry schedule (qmail-send 4.3)', () => {
  it('retries local deliveries at (10k)^2 seconds', () => {
    expect(attempts('local', 10_000)).toEqual([0, 100, 400, 900, 1600, 2500, 3600, 4900, 6400, 8100, 10000]);
  });

  it('retries remote deliveries at (20k)^2 seconds', () => {
    expect(attempts('remote', 57_600)).toEqual([0, 400, 1600, 3600, 6400, 10000, 14400, 19600, 25600, 32400, 40000, 48400, 57600]);
  });

  it('recomputes from the birth time when a pass starts late', () => {
    expect(nextAttempt(birth, at(450), 'remote')).toBe(at(1681));
    expect(nextAttempt(birth, at(399), 'remote')).toBe(at(1521));
    expect(nextAttempt(birth, at(-50), 'local')).toBe(at(100));
  });

  it('counts 79 local and 40 remote attempts in seven days, the last one dying', () => {
    const week = 604800;
    const local = attempts('local', 608400);
    const remote = attempts('remote', 608400);
    expect(local).toHaveLength(79);
    expect(remote).toHaveLength(40);
    expect(local.at(-2)).toBe(592900);
    expect(remote.at(-2)).toBe(577600);
    expect(isDying(birth, at(local.at(-2)!), week)).toBe(false);
    expect(isDying(birth, at(608400), week)).toBe(true);
  });
});
