import type { ControlLine } from './read.js';

/** How a control file's text becomes a value. */
export type ControlKind = 'string' | 'int' | 'list' | 'map' | 'lines' | 'text';

export interface RawValue {
  string: string;
  int: number;
  list: string[];
  map: Record<string, string>;
  lines: string[];
  text: string;
}

/** What a default may depend on: the values of the other files read so far (`me` always first). */
export interface DefaultContext {
  /** The effective value of `control/me`. */
  me: string;
}

/** Reports a problem at one entry of a file: an index of a list/lines value or a key of a map. */
export type Fail = (at: number | string, reason: string) => never;

/**
 * One control file as a plugin declares it. `T` is the value the plugin gets;
 * `D` records whether a default makes the value always present.
 */
export interface ControlFileSpec<K extends ControlKind = ControlKind, T = RawValue[K], D extends boolean = boolean> {
  readonly kind: K;
  /** Used when the file is absent; a function computes it (for example from `me`). */
  readonly default?: RawValue[K] | ((ctx: DefaultContext) => RawValue[K]);
  /** JSON schema for the raw value (ajv, strict); merged with the kind's base type. */
  readonly schema?: Record<string, unknown>;
  /** Turns the validated raw value into what the plugin uses; `fail` names the entry at fault. */
  parse?(raw: RawValue[K], fail: Fail): T;
  readonly description?: string;
  /** Type marker only. */
  readonly __hasDefault?: D;
}

type SpecOptions<K extends ControlKind, T> = {
  description?: string;
  schema?: Record<string, unknown>;
  parse?: (raw: RawValue[K], fail: Fail) => T;
};

function make<K extends ControlKind>(kind: K) {
  // NoInfer: the value type comes from `parse` (or the kind), never from the
  // contextual type of the `control` object a call sits in.
  function spec<T = RawValue[K]>(
    options: SpecOptions<K, T> & { default: RawValue[K] | ((ctx: DefaultContext) => RawValue[K]) },
  ): ControlFileSpec<K, NoInfer<T>, true>;
  function spec<T = RawValue[K]>(options?: SpecOptions<K, T>): ControlFileSpec<K, NoInfer<T>, false>;
  function spec(options: Record<string, unknown> = {}) {
    return { kind, ...options };
  }
  return spec;
}

/** Constructors for control file declarations. */
export const control = {
  /** First line, trailing blanks stripped (qmail single-value files). */
  string: make('string'),
  /** First line as a whole number. */
  int: make('int'),
  /** One entry per line; blanks and `#` comments skipped. */
  list: make('list'),
  /** `key:value` per line, key lower-cased, last one wins. */
  map: make('map'),
  /** Meaningful lines kept as written (for files with their own syntax, like tcp.smtp). */
  lines: make('lines'),
  /** The whole file (certificates, templates). */
  text: make('text'),
};

/** Default that follows `control/me`, as many qmail files do. */
export const fromMe = ({ me }: DefaultContext): string => me;

export type AnySpec = ControlFileSpec<ControlKind, unknown, boolean>;
export type ControlSpecs = Record<string, AnySpec>;

/** The config object a plugin receives for its declared files. */
export type ConfigOf<S extends ControlSpecs> = {
  readonly [F in keyof S]: S[F] extends ControlFileSpec<ControlKind, infer T, infer D> ? (D extends true ? T : T | undefined) : never;
};

export type { ControlLine };
