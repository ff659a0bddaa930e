import { ConfigError } from '../errors.js';

/** Longest line accepted in a line-oriented control file. */
export const MAX_LINE = 4096;
/** Largest control file read at all. */
export const MAX_FILE = 64 * 1024 * 1024;

/** A control file's text, split into lines with their 1-based numbers. */
export interface ControlLine {
  line: number;
  text: string;
}

/**
 * Splits a control file into lines. Tolerates CRLF; refuses NUL bytes (binary
 * files) and over-long lines with an error naming file and line.
 */
export function splitLines(file: string, data: Buffer): ControlLine[] {
  const text = data.toString('utf8');
  const lines: ControlLine[] = [];
  let start = 0;
  let n = 1;
  while (start <= text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    let line = text.slice(start, end);
    if (line.endsWith('\r')) line = line.slice(0, -1);
    if (line.includes('\0')) throw new ConfigError(file, n, 'contains a NUL byte (binary data is not a control file)');
    if (line.length > MAX_LINE) throw new ConfigError(file, n, `line longer than ${MAX_LINE} characters`);
    if (!(end === text.length && line === '')) lines.push({ line: n, text: line });
    start = end + 1;
    n++;
  }
  return lines;
}

/** qmail's list files: trailing blanks stripped, empty lines and `#` comments ignored. */
export function listLines(lines: ControlLine[]): ControlLine[] {
  const out: ControlLine[] = [];
  for (const l of lines) {
    const text = l.text.trim();
    if (text === '' || text.startsWith('#')) continue;
    out.push({ line: l.line, text });
  }
  return out;
}

/** The first meaningful line (single-value files); comments allowed before it. */
export function firstLine(lines: ControlLine[]): ControlLine | undefined {
  return listLines(lines)[0];
}

/** `key:value` files: key before the first colon (lower-cased), the last line of a key wins. */
export function mapLines(file: string, lines: ControlLine[]): { value: Record<string, string>; lineOf: Record<string, number> } {
  const value: Record<string, string> = {};
  const lineOf: Record<string, number> = {};
  for (const l of listLines(lines)) {
    const colon = l.text.indexOf(':');
    if (colon < 0) throw new ConfigError(file, l.line, `expected key:value, got "${clip(l.text)}"`);
    const key = l.text.slice(0, colon).trim().toLowerCase();
    value[key] = l.text.slice(colon + 1).trim();
    lineOf[key] = l.line;
  }
  return { value, lineOf };
}

export function parseInteger(file: string, l: ControlLine): number {
  const text = l.text.trim();
  if (!/^[+-]?\d{1,15}$/.test(text)) throw new ConfigError(file, l.line, `not an integer: "${clip(text)}"`);
  return Number.parseInt(text, 10);
}

export function clip(text: string, max = 60): string {
  return text.length > max ? `${text.slice(0, max)}...` : text;
}
