import { Ajv, type ErrorObject } from 'ajv';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError, ConfigErrors, QuailError, ErrorCodes } from '../errors.js';
import { firstLine, listLines, mapLines, MAX_FILE, parseInteger, splitLines } from './read.js';
import type { AnySpec, ControlKind, ControlSpecs, DefaultContext, RawValue } from './spec.js';
import { qmailFiles } from './qmail-files.js';

/** One control file in a snapshot, as `quail showctl` lists it. */
export interface ControlEntry {
  file: string;
  kind: ControlKind;
  /** The effective value as read and validated (before any plugin's parse). */
  value: unknown;
  /** True when the file is absent and the default applies. */
  isDefault: boolean;
  /** Plugins that declared the file. */
  declaredBy: string[];
  description?: string;
}

/** Every control file as read at one moment, validated and frozen. */
export interface ControlSnapshot {
  readonly me: string;
  /** A file's value as read and validated (before any plugin's parse). */
  get(file: string): unknown;
  /** The config object of one plugin: its declared files, each through that plugin's parse. */
  configFor(plugin: string): Readonly<Record<string, unknown>>;
  readonly entries: readonly ControlEntry[];
  /** Files present in control/ that no plugin declares. */
  readonly unknown: readonly string[];
}

const BASE_TYPE: Record<ControlKind, Record<string, unknown>> = {
  string: { type: 'string' },
  int: { type: 'integer' },
  list: { type: 'array', items: { type: 'string' } },
  map: { type: 'object', additionalProperties: { type: 'string' } },
  lines: { type: 'array', items: { type: 'string' } },
  text: { type: 'string' },
};

interface Declared {
  /** The first declaration: kind, default and description. */
  spec: AnySpec;
  plugins: string[];
  /** Every declaration, so each plugin's schema is checked and its parse run. */
  specs: Map<string, AnySpec>;
}

interface ReadFile {
  raw: unknown;
  isDefault: boolean;
  /** Line of each list index / map key; `line` for single values. */
  lineOf: (at: number | string | undefined) => number;
}

/**
 * The control directory: what plugins declared, and how to read and validate it
 * into a snapshot. Reading never changes the running config; the server swaps
 * snapshots only after a whole new one validated.
 */
export class ControlDirectory {
  readonly dir: string;
  readonly #declared = new Map<string, Declared>();
  readonly #plugins = new Map<string, string[]>();

  constructor(root: string) {
    this.dir = join(root, 'control');
    this.declare('quail', { me: qmailFiles.me });
  }

  /** Records a plugin's files. The same file declared twice must agree on kind and default. */
  declare(plugin: string, specs: ControlSpecs): void {
    const files = this.#plugins.get(plugin) ?? [];
    for (const [file, spec] of Object.entries(specs)) {
      if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(file)) {
        throw new QuailError(ErrorCodes.PLUGIN_LOAD, `plugin ${plugin} declares an invalid control file name "${file}"`);
      }
      const existing = this.#declared.get(file);
      if (existing) {
        if (existing.spec.kind !== spec.kind || !sameDefault(existing.spec.default, spec.default)) {
          throw new QuailError(
            ErrorCodes.PLUGIN_LOAD,
            `control/${file} is declared differently by ${existing.plugins.join(', ')} and ${plugin} (kind or default)`,
          );
        }
        existing.plugins.push(plugin);
        existing.specs.set(plugin, spec);
      } else {
        this.#declared.set(file, { spec, plugins: [plugin], specs: new Map([[plugin, spec]]) });
      }
      files.push(file);
    }
    this.#plugins.set(plugin, files);
  }

  /** Reads, parses and validates every declared file. Throws ConfigErrors listing each problem. */
  async load(): Promise<ControlSnapshot> {
    const errors: ConfigError[] = [];
    const files = new Map<string, ReadFile>();
    const present = new Set(await this.#listDir());
    const ordered = ['me', ...[...this.#declared.keys()].filter((f) => f !== 'me')];
    let defaults: DefaultContext = { me: 'localhost' };
    for (const file of ordered) {
      const { spec } = this.#declared.get(file)!;
      try {
        const read = present.has(file) ? await this.#readFile(file, spec.kind) : undefined;
        files.set(file, read ?? { raw: defaultOf(spec, defaults), isDefault: true, lineOf: () => 0 });
      } catch (err) {
        if (err instanceof ConfigError) errors.push(err);
        else throw err;
        files.set(file, { raw: defaultOf(spec, defaults), isDefault: true, lineOf: () => 0 });
      }
      if (file === 'me') defaults = { me: String(files.get('me')!.raw ?? 'localhost') };
    }
    if (errors.length === 0) errors.push(...this.#validate(files));
    const parsed = new Map<string, Map<string, unknown>>();
    if (errors.length === 0) {
      for (const [file, read] of files) {
        const byPlugin = new Map<string, unknown>();
        const done = new Map<AnySpec['parse'], unknown>();
        for (const [plugin, spec] of this.#declared.get(file)!.specs) {
          if (!spec.parse || read.raw === undefined) {
            byPlugin.set(plugin, read.raw);
            continue;
          }
          if (!done.has(spec.parse)) {
            try {
              done.set(spec.parse, spec.parse(read.raw as never, failAt(file, read)));
            } catch (err) {
              const reason = err instanceof Error ? err.message : String(err);
              errors.push(err instanceof ConfigError ? err : new ConfigError(file, read.lineOf(undefined), reason));
              done.set(spec.parse, undefined);
            }
          }
          byPlugin.set(plugin, done.get(spec.parse));
        }
        parsed.set(file, byPlugin);
      }
    }
    if (errors.length > 0) throw new ConfigErrors(errors);
    return this.#snapshot(files, parsed, present);
  }

  async #listDir(): Promise<string[]> {
    try {
      const names = await readdir(this.dir, { withFileTypes: true });
      const visible = names.filter((d) => !d.name.startsWith('.') && !d.name.endsWith('~'));
      // a symbolic link counts as the file it points to (admins link shared files in)
      const files = await Promise.all(
        visible.map(async (d) => (d.isFile() || (d.isSymbolicLink() && (await stat(join(this.dir, d.name)).then((i) => i.isFile(), () => false))) ? d.name : undefined)),
      );
      return files.filter((f): f is string => f !== undefined);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new QuailError(ErrorCodes.CONFIG, `control/: cannot read the directory: ${(err as Error).message}`, { cause: err });
    }
  }

  async #readFile(file: string, kind: ControlKind): Promise<ReadFile> {
    const path = join(this.dir, file);
    let data: Buffer;
    try {
      const info = await stat(path);
      if (info.size > MAX_FILE) throw new ConfigError(file, 1, `file larger than ${MAX_FILE} bytes`);
      data = await readFile(path);
    } catch (err) {
      if (err instanceof ConfigError) throw err;
      throw new ConfigError(file, 0, `cannot read: ${(err as Error).message}`);
    }
    if (kind === 'text') {
      if (data.includes(0)) throw new ConfigError(file, lineOfByte(data, data.indexOf(0)), 'contains a NUL byte');
      return { raw: data.toString('utf8'), isDefault: false, lineOf: () => 1 };
    }
    const lines = splitLines(file, data);
    switch (kind) {
      case 'string': {
        const first = firstLine(lines);
        return { raw: first?.text ?? '', isDefault: false, lineOf: () => first?.line ?? 1 };
      }
      case 'int': {
        const first = firstLine(lines);
        if (!first) throw new ConfigError(file, 1, 'empty: expected an integer');
        return { raw: parseInteger(file, first), isDefault: false, lineOf: () => first.line };
      }
      case 'list':
      case 'lines': {
        const entries = listLines(lines);
        return {
          raw: entries.map((l) => l.text),
          isDefault: false,
          lineOf: (at) => (typeof at === 'number' ? entries[at]?.line : undefined) ?? entries[0]?.line ?? 1,
        };
      }
      case 'map': {
        const { value, lineOf } = mapLines(file, lines);
        return { raw: value, isDefault: false, lineOf: (at) => (typeof at === 'string' ? lineOf[at] : undefined) ?? 1 };
      }
    }
  }

  #validate(files: Map<string, ReadFile>): ConfigError[] {
    const properties: Record<string, unknown> = {};
    for (const [file, { spec, specs }] of this.#declared) {
      const schemas = new Map<string, Record<string, unknown>>();
      for (const s of specs.values()) {
        const merged = mergeSchema(BASE_TYPE[spec.kind], s.schema);
        schemas.set(JSON.stringify(merged), merged);
      }
      properties[file] = schemas.size === 1 ? [...schemas.values()][0] : { allOf: [...schemas.values()] };
    }
    const ajv = new Ajv({ strict: true, allErrors: true, coerceTypes: false, useDefaults: false });
    let validate;
    try {
      validate = ajv.compile({ type: 'object', properties });
    } catch (err) {
      throw new QuailError(ErrorCodes.PLUGIN_LOAD, `a plugin declared an invalid control schema: ${(err as Error).message}`, { cause: err });
    }
    const data = Object.fromEntries([...files].map(([f, r]) => [f, r.raw]));
    if (validate(data)) return [];
    return dedupe((validate.errors ?? []).map((e) => toConfigError(e, files)));
  }

  #snapshot(files: Map<string, ReadFile>, parsed: Map<string, Map<string, unknown>>, present: Set<string>): ControlSnapshot {
    const raw = new Map([...files].map(([file, read]) => [file, deepFreeze(read.raw)]));
    const entries: ControlEntry[] = [...this.#declared]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([file, { spec, plugins }]) => ({
        file,
        kind: spec.kind,
        value: raw.get(file),
        isDefault: files.get(file)!.isDefault,
        declaredBy: [...plugins],
        ...(spec.description !== undefined && { description: spec.description }),
      }));
    const unknown = [...present].filter((f) => !this.#declared.has(f)).sort();
    const configs = new Map<string, Readonly<Record<string, unknown>>>();
    for (const [plugin, names] of this.#plugins) {
      configs.set(plugin, deepFreeze(Object.fromEntries(names.map((f) => [f, parsed.get(f)?.get(plugin)]))));
    }
    deepFreeze(entries);
    return Object.freeze({
      me: String(raw.get('me')),
      get: (file: string) => raw.get(file),
      configFor: (plugin: string) => configs.get(plugin) ?? Object.freeze({}),
      entries,
      unknown: Object.freeze(unknown),
    });
  }
}

function mergeSchema(base: Record<string, unknown>, fragment?: Record<string, unknown>): Record<string, unknown> {
  if (!fragment) return base;
  const merged: Record<string, unknown> = { ...base, ...fragment };
  for (const key of ['items', 'additionalProperties']) {
    const b = base[key];
    const f = fragment[key];
    if (b && f && typeof b === 'object' && typeof f === 'object') merged[key] = { ...b, ...f };
  }
  return merged;
}

function defaultOf(spec: AnySpec, ctx: DefaultContext): unknown {
  const d = spec.default;
  if (typeof d === 'function') return (d as (c: DefaultContext) => unknown)(ctx);
  if (d !== undefined) return structuredClone(d);
  const empty: Partial<Record<ControlKind, unknown>> = { list: [], lines: [], map: {} };
  return empty[spec.kind];
}

function sameDefault(a: unknown, b: unknown): boolean {
  if (typeof a === 'function' || typeof b === 'function') return a === b;
  return JSON.stringify(a) === JSON.stringify(b);
}

function failAt(file: string, read: ReadFile) {
  return (at: number | string, reason: string): never => {
    throw new ConfigError(file, read.lineOf(at), reason);
  };
}

function toConfigError(e: ErrorObject, files: Map<string, ReadFile>): ConfigError {
  const parts = e.instancePath.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  const file = parts[0] ?? String(e.params.missingProperty ?? '?');
  const read = files.get(file);
  const at = parts[1] === undefined ? undefined : /^\d+$/.test(parts[1]) && Array.isArray(read?.raw) ? Number(parts[1]) : parts[1];
  const line = read ? read.lineOf(at) : 0;
  const shown = at === undefined ? read?.raw : (read?.raw as Record<string, unknown>)[at as never];
  return new ConfigError(file, line, `${e.message ?? 'invalid'}${shown !== undefined && typeof shown !== 'object' ? ` (got ${JSON.stringify(shown)})` : ''}`);
}

function dedupe(errors: ConfigError[]): ConfigError[] {
  const seen = new Set<string>();
  return errors.filter((e) => (seen.has(e.message) ? false : (seen.add(e.message), true)));
}

function lineOfByte(data: Buffer, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset; i++) if (data[i] === 0x0a) line++;
  return line;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

export type { RawValue };
