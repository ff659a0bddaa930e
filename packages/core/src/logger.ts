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
    .map(([k, v]) => `${k}=${k === 'err' && v && typeof v === 'object' ? JSON.stringify((v as { message?: string }).message) : JSON.stringify(v)}`)
    .join(' ');
  return `${time} ${level} ${who}${String(record.msg ?? '')}${extra ? ` ${extra}` : ''}\n`;
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
