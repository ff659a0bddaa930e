import { ErrorCodes, QuailError } from '@quail/core';

/** A value shown inside a one-line error message: control bytes escaped, long values clipped. */
export function shown(value: string, max = 80): string {
  const clipped = value.length > max ? `${value.slice(0, max)}...` : value;
  return /[\x00-\x1f\x7f\u2028\u2029]/.test(clipped) ? quoted(clipped) : clipped;
}

/**
 * A string in double quotes with every line break escaped, for log lines and
 * messages: JSON.stringify, which leaves U+2028 and U+2029 (line and paragraph
 * separators) as they are, with those two escaped as well.
 */
export function quoted(value: string): string {
  return JSON.stringify(value).replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
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
