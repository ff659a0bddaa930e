import { pino, type Logger, type LevelWithSilent } from 'pino';
import { stdoutLines } from './line-writer.js';

export type LogFormat = 'pretty' | 'json';

export interface LoggerOptions {
  level?: LevelWithSilent;
  format?: LogFormat;
  /** Where lines go; by default standard output, written without blocking the event loop (`LineWriter`). */
  write?: (line: string) => void;
}

const LEVEL_NAMES: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };
const SKIP = new Set(['level', 'time', 'pid', 'hostname', 'msg', 'plugin', 'name']);

/** Control characters and line separators, which would split or forge a log line. */
const LINE_BREAKERS = /[\x00-\x1f\x7f\u2028\u2029]/g;

/** JSON's escape (`\n`, `\u0000`), and `\uXXXX` for the characters JSON leaves as they are. */
function escapeChar(ch: string): string {
  const escaped = JSON.stringify(ch).slice(1, -1);
  return escaped.length > 1 ? escaped : `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`;
}

/** The text with every control character and line separator escaped, so that a record stays one line. */
function oneLine(text: string): string {
  return text.replace(LINE_BREAKERS, escapeChar);
}

/**
 * One line per record, readable by people: `ISO-time level plugin: message key=value`.
 * qmail-send style messages ("new msg 123") come through as the message.
 */
export function formatPretty(record: Record<string, unknown>): string {
  const time = new Date(typeof record.time === 'number' ? record.time : Date.now()).toISOString();
  const level = LEVEL_NAMES[record.level as number] ?? String(record.level);
  const who = record.plugin ? `${String(record.plugin)}: ` : '';
  const extra = Object.entries(record)
    .filter(([k]) => !SKIP.has(k))
    .map(([k, v]) => `${k}=${oneLine(JSON.stringify(k === 'err' && v && typeof v === 'object' ? (v as { message?: string }).message : v) ?? 'undefined')}`)
    .join(' ');
  return `${time} ${level} ${oneLine(who)}${oneLine(String(record.msg ?? ''))}${extra ? ` ${extra}` : ''}\n`;
}

function lineToStdout(line: string): void {
  stdoutLines().write(line);
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const format = options.format ?? 'pretty';
  const write = options.write ?? lineToStdout;
  const stream = {
    write(json: string) {
      if (format === 'json') return write(json);
      try {
        write(formatPretty(JSON.parse(json) as Record<string, unknown>));
      } catch {
        write(json);
      }
    },
  };
  return pino({ level: options.level ?? 'info', base: undefined, serializers: { err: pino.stdSerializers.err } }, stream);
}

export type { Logger };
