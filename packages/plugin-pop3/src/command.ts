/** One client line split into its keyword (upper-cased) and the rest. */
export interface Pop3Command {
  verb: string;
  /** Everything after the first run of spaces, as typed (passwords may contain spaces). */
  rest: string;
  /** `rest` split on spaces. */
  args: string[];
}

/** Splits a command line the way qmail-popup does: keyword up to the first space, argument after the spaces. */
export function parseCommand(line: string): Pop3Command {
  const text = line.replace(/^[ \t]+/, '');
  const space = text.search(/[ \t]/);
  const verb = (space < 0 ? text : text.slice(0, space)).toUpperCase();
  const rest = space < 0 ? '' : text.slice(space).replace(/^[ \t]+/, '');
  const args = rest === '' ? [] : rest.split(/[ \t]+/).filter((a) => a !== '');
  return { verb, rest, args };
}

export type NumberResult = { ok: true; value: number } | { ok: false; error: string };

/**
 * A message number as qmail-pop3d checks it: digits only (`-ERR syntax error`),
 * not 0 (`-ERR messages are counted from 1`), at most `count`
 * (`-ERR not that many messages`).
 */
export function parseMessageNumber(text: string | undefined, count: number): NumberResult {
  if (text === undefined || !/^\d+$/.test(text)) return { ok: false, error: 'syntax error' };
  const digits = text.replace(/^0+(?=\d)/, '');
  if (digits === '0') return { ok: false, error: 'messages are counted from 1' };
  if (digits.length > 9 || Number(digits) > count) return { ok: false, error: 'not that many messages' };
  return { ok: true, value: Number(digits) };
}

/** A non-negative line count for TOP; undefined when it is not one. */
export function parseLineCount(text: string): number | undefined {
  if (!/^\d+$/.test(text)) return undefined;
  const digits = text.replace(/^0+(?=\d)/, '');
  return digits.length > 15 ? Number.MAX_SAFE_INTEGER : Number(digits);
}
