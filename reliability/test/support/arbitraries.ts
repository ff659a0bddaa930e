import fc from 'fast-check';

/** Fragments that break naive parsers: traversal, line-end injection, NUL, separators, quoting. */
export const HOSTILE_FRAGMENTS = [
  '../',
  '..',
  '/etc/passwd',
  '/',
  '\0',
  '\r\n',
  '\n',
  '\r',
  '\n.\n',
  '\r\n.\r\n',
  ':',
  '::',
  '%',
  '@',
  '@@',
  '!',
  '"',
  '\\',
  '<',
  '>',
  '[',
  ']',
  '#',
  '&',
  '|',
  '=',
  ',',
  ' ',
  '\t',
  '\x7f',
  '\xff',
  '\u2028',
  '\ud800',
  'é',
  '𝓆',
  '0-255',
  '-',
  '.',
  '+list',
  'RELAYCLIENT=""',
  'allow',
  'deny',
] as const;

/** A string mixing printable text with hostile fragments. */
export const hostileString = (maxPieces = 12): fc.Arbitrary<string> =>
  fc
    .array(fc.oneof(fc.constantFrom(...HOSTILE_FRAGMENTS), fc.string({ maxLength: 8 }), fc.string({ unit: 'binary', maxLength: 4 })), {
      maxLength: maxPieces,
    })
    .map((parts) => parts.join(''));

/** Multi-line hostile text (the lines of a control or account file). */
export const hostileText = (maxLines = 8): fc.Arbitrary<string> =>
  fc.array(hostileString(), { maxLength: maxLines }).chain((lines) =>
    fc.constantFrom('\n', '\r\n', '\r').map((eol) => lines.join(eol)),
  );

/** Raw bytes, sometimes with a hostile fragment spliced in. */
export const hostileBytes = (maxLength = 256): fc.Arbitrary<Buffer> =>
  fc.oneof(
    fc.uint8Array({ maxLength }).map((b) => Buffer.from(b)),
    hostileText().map((t) => Buffer.from(t, 'utf8')),
  );

/** One line of `size` bytes (the 10 MB-line case), built once per call. */
export function longLine(size: number, fill = 'a'): string {
  return fill.repeat(size);
}
