import { describe, expect, it } from 'vitest';
import { DirectorySyncs } from '@quail/core';

/** A directory fsync the test finishes by hand. */
class ManualSyncs {
  readonly started: Array<{ dir: string; finish: (err?: Error) => void }> = [];

  readonly sync = (dir: string): Promise<void> =>
    new Promise((resolve, reject) => {
      this.started.push({ dir, finish: (err) => (err ? reject(err) : resolve()) });
    });
}

/** Lets every settled promise run its callbacks. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

function track(promise: Promise<void>): { done: boolean; error?: unknown } {
  const state: { done: boolean; error?: unknown } = { done: false };
  promise.then(
    () => (state.done = true),
    (err: unknown) => {
      state.done = true;
      state.error = err;
    },
  );
  return state;
}

describe('DirectorySyncs (group commit of new/ fsyncs)', () => {
  it('starts an fsync at once when none is running', async () => {
    const manual = new ManualSyncs();
    const syncs = new DirectorySyncs(manual.sync);
    const first = track(syncs.sync('/m/new'));
    expect(manual.started.map((s) => s.dir)).toEqual(['/m/new']);
    manual.started[0]!.finish();
    await settle();
    expect(first.done).toBe(true);
  });

  it('callers arriving during an fsync share the single next one and resolve only when it is done', async () => {
    const manual = new ManualSyncs();
    const syncs = new DirectorySyncs(manual.sync);
    const first = track(syncs.sync('/m/new'));
    const later = [track(syncs.sync('/m/new')), track(syncs.sync('/m/new')), track(syncs.sync('/m/new'))];
    expect(manual.started).toHaveLength(1);
    manual.started[0]!.finish();
    await settle();
    expect(first.done).toBe(true);
    // The running fsync may have started before their links: they need the next one.
    expect(later.some((l) => l.done)).toBe(false);
    expect(manual.started).toHaveLength(2);
    manual.started[1]!.finish();
    await settle();
    expect(later.every((l) => l.done && l.error === undefined)).toBe(true);
    expect(manual.started).toHaveLength(2);
  });

  it('keeps directories apart', async () => {
    const manual = new ManualSyncs();
    const syncs = new DirectorySyncs(manual.sync);
    void syncs.sync('/a/new');
    void syncs.sync('/b/new');
    expect(manual.started.map((s) => s.dir)).toEqual(['/a/new', '/b/new']);
    for (const s of manual.started) s.finish();
    await settle();
  });

  it('a failed fsync rejects its own callers only; the next group gets a fresh fsync', async () => {
    const manual = new ManualSyncs();
    const syncs = new DirectorySyncs(manual.sync);
    const first = track(syncs.sync('/m/new'));
    const second = track(syncs.sync('/m/new'));
    manual.started[0]!.finish(new Error('EIO'));
    await settle();
    expect(first.error).toMatchObject({ message: 'EIO' });
    expect(second.done).toBe(false);
    manual.started[1]!.finish();
    await settle();
    expect(second).toEqual({ done: true });
    const third = track(syncs.sync('/m/new'));
    expect(manual.started).toHaveLength(3);
    manual.started[2]!.finish();
    await settle();
    expect(third.done).toBe(true);
  });
});
