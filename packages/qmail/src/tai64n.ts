/** 2^62: the TAI64 label of the epoch's second 0 (daemontools' offset). */
const TAI64_BASE = 1n << 62n;
/** daemontools counts TAI as UNIX time plus 10 seconds. */
const TAI_OFFSET = 10n;

/**
 * The `multilog t` stamp for a moment: `@` followed by 24 lowercase hex digits,
 * 16 for 2^62 + TAI seconds and 8 for nanoseconds (daemontools fills them as
 * microseconds * 1000 + 500).
 */
export function tai64n(at: Date | number = Date.now()): string {
  const ms = typeof at === 'number' ? at : at.getTime();
  const seconds = BigInt(Math.floor(ms / 1000));
  const micros = (ms - Math.floor(ms / 1000) * 1000) * 1000;
  const nanos = Math.round(micros) * 1000 + 500;
  const label = (TAI64_BASE + seconds + TAI_OFFSET).toString(16).padStart(16, '0');
  return `@${label}${nanos.toString(16).padStart(8, '0')}`;
}

/** Reads a TAI64N label back (tai64nlocal's job); undefined when the text is not one. */
export function parseTai64n(label: string): Date | undefined {
  const m = /^@([0-9a-f]{16})([0-9a-f]{8})$/.exec(label);
  if (!m) return undefined;
  const seconds = BigInt(`0x${m[1]}`) - TAI64_BASE - TAI_OFFSET;
  const nanos = Number.parseInt(m[2]!, 16);
  if (nanos > 999_999_999) return undefined;
  return new Date(Number(seconds) * 1000 + Math.floor(nanos / 1_000_000));
}
