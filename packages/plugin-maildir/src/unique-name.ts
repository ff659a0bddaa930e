import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Clock } from '@quail/core';

/**
 * The host part of a Maildir unique name: `/` and `:` may not appear in a
 * name, so they are written as `\057` and `\072`. `,` is written as `\054` too,
 * because `,S=` and `,W=` after the host carry the message sizes.
 */
export function escapeHostName(host: string): string {
  return host.replace(/[/:,\\\0-\x1f]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
}

/** Deliveries made by this process, shared by every store so that names stay unique. */
let deliveries = 0;

export interface UniqueName {
  /** `<seconds>.M<usec>P<pid>Q<n>R<random>.<host>`: unique, no `/`, no `:`, no leading dot. */
  base: string;
  /** The time the name stands for. */
  time: Date;
}

/** Makes modern Maildir unique names (cr.yp.to maildir.html). */
export class UniqueNames {
  readonly host: string;
  readonly #now: () => number;

  constructor(options: { hostname?: string; clock?: Pick<Clock, 'now'> } = {}) {
    this.host = escapeHostName(options.hostname ?? hostname());
    const clock = options.clock;
    this.#now = clock ? () => clock.now() : () => Date.now();
  }

  next(): UniqueName {
    const ms = this.#now();
    const seconds = Math.floor(ms / 1000);
    const micro = (ms % 1000) * 1000 + (Number(process.hrtime.bigint() / 1000n) % 1000);
    deliveries += 1;
    const middle = `M${micro}P${process.pid}Q${deliveries}R${randomBytes(4).toString('hex')}`;
    return { base: `${seconds}.${middle}.${this.host}`, time: new Date(ms) };
  }
}
