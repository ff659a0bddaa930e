import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ConfigErrors, QuailError, ErrorCodes } from '@quail/core';

/** One `quail` subcommand. `run` returns the exit code. */
export interface Command {
  name: string;
  /** One line for `quail --help`. */
  summary: string;
  /** `quail <name> --help`: usage line, description and examples. */
  help: string;
  run(argv: string[]): Promise<number>;
}

/** A mistake in how the command was called: exit 100, as qmail's programs do for usage errors. */
export class UsageError extends QuailError {
  constructor(message: string) {
    super(ErrorCodes.INVALID, message);
    this.name = 'UsageError';
  }
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** node:util parseArgs with the command's errors turned into one-line usage errors. */
export function parse<O extends Options>(
  argv: string[],
  options: O,
  positionals: { min?: number; max?: number } = {},
): ReturnType<typeof parseArgs<{ args: string[]; options: O; allowPositionals: true; strict: true }>> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message.replace(/\. To specify a positional argument.*$/s, '').split('\n')[0]!);
  }
  const n = parsed.positionals.length;
  if (positionals.min !== undefined && n < positionals.min) throw new UsageError(`missing argument${positionals.min - n > 1 ? 's' : ''} (see --help)`);
  if (positionals.max !== undefined && n > positionals.max) throw new UsageError(`unexpected argument: ${parsed.positionals[positionals.max]}`);
  return parsed;
}

/** The exit code for an error: 100 for what can never work as given, 111 for what may work later. */
export function exitCodeOf(err: unknown): number {
  if (err instanceof ConfigErrors) return 100;
  if (err instanceof QuailError) return err.code === ErrorCodes.TEMPORARY || err.code === ErrorCodes.STATE ? 111 : 100;
  return 111;
}

/** One line describing an error (ConfigErrors joined with "; "). */
export function oneLine(err: unknown): string {
  if (err instanceof ConfigErrors) return err.errors.map((e) => e.message).join('; ');
  const message = err instanceof Error ? err.message : String(err);
  return message.replace(/\s*\n\s*/g, '; ');
}

export function out(text: string): void {
  process.stdout.write(text.endsWith('\n') || text === '' ? text : `${text}\n`);
}

export function rootOption() {
  return { root: { type: 'string' as const } };
}
