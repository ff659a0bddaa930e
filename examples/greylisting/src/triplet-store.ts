import { mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { atomicWriteFile, type Logger } from '@quail/core';

/** What is remembered about one (network, sender, recipient) triplet. Times in ms since the epoch. */
export interface TripletRecord {
  firstSeen: number;
  lastSeen: number;
  /** Set once a retry came after the delay: the triplet passes from then on. */
  passedAt?: number;
}

/** Bound on remembered triplets: the oldest are forgotten beyond it. */
export const MAX_TRIPLETS = 200_000;

/**
 * Greylisting state in one JSON file. Every change is written to a temporary
 * file, fsynced and renamed over the old one (atomicWriteFile), so a crash
 * leaves the old or the new state, never half of one. Writes are serialised.
 */
export class TripletStore {
  readonly file: string;
  #records = new Map<string, TripletRecord>();
  #writing: Promise<void> = Promise.resolve();

  constructor(file: string) {
    this.file = file;
  }

  /** Reads the file; a missing file is an empty store, an unreadable one is logged (naming the file) and replaced. */
  async load(log?: Logger): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    try {
      this.#records = new Map(Object.entries(parseState(text)));
    } catch (err) {
      log?.warn(`${this.file}: ${(err as Error).message}; starting with an empty greylist`);
      this.#records = new Map();
    }
  }

  get(key: string): TripletRecord | undefined {
    return this.#records.get(key);
  }

  get size(): number {
    return this.#records.size;
  }

  /** Records a triplet and writes the store; resolves once the file is durable. */
  set(key: string, record: TripletRecord): Promise<void> {
    this.#records.delete(key);
    this.#records.set(key, record);
    while (this.#records.size > MAX_TRIPLETS) this.#records.delete(this.#records.keys().next().value!);
    return this.#save();
  }

  /** Forgets the records `expired` says are over. */
  prune(expired: (record: TripletRecord) => boolean): void {
    for (const [key, record] of this.#records) if (expired(record)) this.#records.delete(key);
  }

  #save(): Promise<void> {
    const write = async () => {
      await mkdir(dirname(this.file), { recursive: true });
      await atomicWriteFile(this.file, `${JSON.stringify(Object.fromEntries(this.#records))}\n`, 0o600);
    };
    this.#writing = this.#writing.then(write, write);
    return this.#writing;
  }
}

function parseState(text: string): Record<string, TripletRecord> {
  const data: unknown = JSON.parse(text);
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw new Error('not a JSON object of triplets');
  for (const [key, value] of Object.entries(data)) {
    const r = value as Partial<TripletRecord> | null;
    const time = (v: unknown) => typeof v === 'number' && Number.isFinite(v);
    if (!r || !time(r.firstSeen) || !time(r.lastSeen) || (r.passedAt !== undefined && !time(r.passedAt))) {
      throw new Error(`triplet ${JSON.stringify(key.slice(0, 80))} is not {firstSeen, lastSeen, passedAt?}`);
    }
  }
  return data as Record<string, TripletRecord>;
}
