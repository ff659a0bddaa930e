import { ErrorCodes, QuailError } from '@quail/core';

/** Wraps an I/O failure as a temporary QuailError (the message stays queued and is retried). */
export function temporary(what: string, err?: unknown): QuailError {
  if (err instanceof QuailError) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const detail = err === undefined ? '' : `: ${code ?? (err instanceof Error ? err.message : String(err))}`;
  return new QuailError(ErrorCodes.TEMPORARY, `${what}${detail}`, { cause: err });
}

export function errnoCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}
