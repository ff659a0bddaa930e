import { ErrorCodes, QuailError } from '@quail/core';

/** A value shown inside a one-line error message: control bytes escaped, long values clipped. */
export function shown(value: string, max = 80): string {
  const clipped = value.length > max ? `${value.slice(0, max)}...` : value;
  return /[\x00-\x1f\x7f]/.test(clipped) ? JSON.stringify(clipped) : clipped;
}

/** Input that can never be valid (names, passwords, quota strings). */
export function invalid(message: string): QuailError {
  return new QuailError(ErrorCodes.INVALID, message);
}

/** A request that conflicts with what exists (domain missing, user already there). */
export function refused(message: string): QuailError {
  return new QuailError(ErrorCodes.PERMANENT, message);
}

/** I/O trouble or a lock that stayed busy: try again later. */
export function temporary(message: string, cause?: unknown): QuailError {
  return new QuailError(ErrorCodes.TEMPORARY, message, cause === undefined ? undefined : { cause });
}
