/**
 * Errors with stable codes. Every error quail raises on purpose is a QuailError;
 * the code is what scripts and tests match on, the message is for people.
 */
export const ErrorCodes = {
  /** A control file is malformed or fails its schema. */
  CONFIG: 'QUAIL_E_CONFIG',
  /** A plugin could not be loaded or is not a plugin. */
  PLUGIN_LOAD: 'QUAIL_E_PLUGIN_LOAD',
  /** Two plugins share a name. */
  PLUGIN_DUPLICATE: 'QUAIL_E_PLUGIN_DUPLICATE',
  /** A plugin requires a service that no plugin provides. */
  SERVICE_MISSING: 'QUAIL_E_SERVICE_MISSING',
  /** Two plugins provide the same service. */
  SERVICE_DUPLICATE: 'QUAIL_E_SERVICE_DUPLICATE',
  /** A plugin declared a service in `provides` but did not register it. */
  SERVICE_NOT_REGISTERED: 'QUAIL_E_SERVICE_NOT_REGISTERED',
  /** The server is not in a state that allows the call. */
  STATE: 'QUAIL_E_STATE',
  /** A temporary failure: the caller should retry later (qmail's 111). */
  TEMPORARY: 'QUAIL_E_TEMPORARY',
  /** A permanent failure (qmail's 100). */
  PERMANENT: 'QUAIL_E_PERMANENT',
  /** A mailbox is over its quota. */
  QUOTA: 'QUAIL_E_QUOTA',
  /** Input that can never be valid (addresses, names, protocol arguments). */
  INVALID: 'QUAIL_E_INVALID',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export class QuailError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'QuailError';
    this.code = code;
  }
}

/** A control file problem, always reported as `control/FILE:LINE: reason`. */
export class ConfigError extends QuailError {
  readonly file: string;
  readonly line: number;
  readonly reason: string;
  constructor(file: string, line: number, reason: string) {
    super(ErrorCodes.CONFIG, `control/${file}:${line}: ${reason}`);
    this.name = 'ConfigError';
    this.file = file;
    this.line = line;
    this.reason = reason;
  }
}

/** Several control file problems found in one pass. */
export class ConfigErrors extends QuailError {
  readonly errors: ConfigError[];
  constructor(errors: ConfigError[]) {
    super(ErrorCodes.CONFIG, errors.map((e) => e.message).join('\n'));
    this.name = 'ConfigErrors';
    this.errors = errors;
  }
}

/** True when an error means "try again later" (I/O trouble, disk full, explicit temporary). */
export function isTemporary(err: unknown): boolean {
  if (err instanceof QuailError) return err.code !== ErrorCodes.PERMANENT && err.code !== ErrorCodes.INVALID;
  return true;
}
