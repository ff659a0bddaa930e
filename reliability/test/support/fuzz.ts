import { connect } from 'node:net';
import { HOSTILE_FRAGMENTS } from './arbitraries.js';

/** A small seeded PRNG (mulberry32), so that a failing run can be replayed with its seed. */
export class Rng {
  #state: number;
  constructor(readonly seed: number) {
    this.#state = seed >>> 0;
  }
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(max: number): number {
    return Math.floor(this.next() * max);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}

/** Mutates a list of protocol lines: byte flips, hostile splices, duplicates, drops, huge lines, case games. */
export function mutate(rng: Rng, lines: string[]): string[] {
  const out = [...lines];
  const rounds = 1 + rng.int(4);
  for (let r = 0; r < rounds; r++) {
    const i = rng.int(Math.max(1, out.length));
    const line = out[i] ?? '';
    switch (rng.int(10)) {
      case 0: {
        const chars = [...line];
        if (chars.length) chars[rng.int(chars.length)] = String.fromCharCode(rng.int(256));
        out[i] = chars.join('');
        break;
      }
      case 1:
        out[i] = line.slice(0, rng.int(line.length + 1)) + rng.pick(HOSTILE_FRAGMENTS) + line.slice(rng.int(line.length + 1));
        break;
      case 2:
        out.splice(i, 0, line);
        break;
      case 3:
        out.splice(i, 1);
        break;
      case 4:
        out[i] = line + 'A'.repeat(rng.pick([1000, 5000, 70_000, 1_100_000]));
        break;
      case 5:
        out[i] = rng.chance(0.5) ? line.toLowerCase() : line.toUpperCase();
        break;
      case 6:
        out[i] = `${line}\n${rng.pick(lines)}`; // bare LF inside a line
        break;
      case 7:
        out.length = i; // truncated session
        break;
      case 8:
        out.splice(i, 0, Array.from({ length: 1 + rng.int(40) }, () => String.fromCharCode(rng.int(256))).join(''));
        break;
      default:
        out[i] = `${line}\0${line}`;
    }
  }
  return out;
}

/** Random printable-ish garbage lines. */
export function garbage(rng: Rng): string[] {
  return Array.from({ length: 1 + rng.int(12) }, () =>
    Array.from({ length: rng.int(120) }, () => (rng.chance(0.2) ? rng.pick(HOSTILE_FRAGMENTS) : String.fromCharCode(32 + rng.int(95)))).join(''),
  );
}

export interface FuzzOutcome {
  /** Server bytes received. */
  received: string;
  /** True when the server closed the connection (rather than us after the idle wait). */
  serverClosed: boolean;
  /** The connection could not be made at all. */
  refused: boolean;
}

/**
 * Sends one session's bytes (in random chunks, all at once when pipelined) and
 * collects the answers until the server closes or stays quiet for `idleMs`.
 */
export function fuzzSession(port: number, rng: Rng, lines: string[], options: { localAddress?: string; idleMs?: number; eol?: string } = {}): Promise<FuzzOutcome> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1', ...(options.localAddress && { localAddress: options.localAddress }) });
    let received = '';
    let serverClosed = false;
    let connected = false;
    let idle: NodeJS.Timeout | undefined;
    const finish = () => {
      clearTimeout(idle);
      clearTimeout(hard);
      socket.destroy();
      resolve({ received, serverClosed, refused: !connected });
    };
    const hard = setTimeout(finish, 20_000);
    const arm = () => {
      clearTimeout(idle);
      idle = setTimeout(finish, options.idleMs ?? 300);
    };
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      if (received.length < 64 * 1024) received += d;
      arm();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      serverClosed = true;
      finish();
    });
    socket.on('connect', () => {
      connected = true;
      const eol = options.eol ?? '\r\n';
      const data = Buffer.from(lines.map((l) => l + eol).join(''), 'latin1');
      const pipelined = rng.chance(0.5);
      if (pipelined) socket.write(data);
      else {
        let offset = 0;
        const step = () => {
          if (offset >= data.length || socket.destroyed) return;
          const size = 1 + rng.int(512);
          socket.write(data.subarray(offset, offset + size));
          offset += size;
          setImmediate(step);
        };
        step();
      }
      if (rng.chance(0.1)) setTimeout(finish, rng.int(50)); // the client vanishes mid-session
      arm();
    });
  });
}
