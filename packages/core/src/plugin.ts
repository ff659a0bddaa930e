import type { DependencyContainer } from 'tsyringe';
import type { ControlSnapshot } from './control/loader.js';
import type { ConfigOf, ControlSpecs } from './control/spec.js';
import type { KernelHooks } from './hooks.js';
import type { Notes } from './notes.js';
import type { Logger, ServiceToken } from './services.js';

/** What a plugin's `register` receives. Everything a plugin needs comes through here. */
export interface PluginContext<C = Readonly<Record<string, unknown>>> {
  /** The plugin's name; use it as the tap name: `hooks.rcpt.tapPromise(ctx.name, ...)`. */
  readonly name: string;
  /** The server root (holds control/, queue/, ...). */
  readonly root: string;
  readonly hooks: KernelHooks;
  /** The server's own tsyringe child container. */
  readonly container: DependencyContainer;
  /** The plugin's declared control files, validated; always the current snapshot (reload swaps it). */
  readonly config: C;
  /** Every control file of the current snapshot. */
  readonly control: ControlSnapshot;
  /** A child logger tagged with the plugin's name. */
  readonly log: Logger;
  /** Registers a service this plugin declared in `provides`. */
  provide<T>(token: ServiceToken<T>, service: T): void;
  /** Registers a service made on first resolve (once per server). */
  provideFactory<T>(token: ServiceToken<T>, factory: () => T): void;
  /** Resolves a service. Call it from init/start or later, not during register. */
  resolve<T>(token: ServiceToken<T>): T;
  /** Resolves a service if some plugin provides it. */
  resolveOptional<T>(token: ServiceToken<T>): T | undefined;
  /** This plugin's namespace in a connection's or transaction's notes. */
  notes<T extends Record<string, unknown> = Record<string, unknown>>(holder: { notes: Notes }): T;
  /** Asks the server to re-read the control directory (same rules as SIGHUP). */
  reload(): Promise<boolean>;
}

export interface PluginDefinition<S extends ControlSpecs = ControlSpecs> {
  name: string;
  version?: string;
  description?: string;
  /** The control files the plugin reads, each with its reader, default and JSON schema. */
  control?: S;
  /** Service tokens this plugin registers. */
  provides?: ReadonlyArray<ServiceToken<unknown>>;
  /** Service tokens that must be provided (by core or another plugin). */
  requires?: ReadonlyArray<ServiceToken<unknown>>;
  register(ctx: PluginContext<ConfigOf<S>>): void | Promise<void>;
}

const PLUGIN = Symbol.for('quail.plugin');

export interface Plugin extends PluginDefinition<ControlSpecs> {
  readonly [PLUGIN]: true;
}

/** Declares a plugin. The returned object is what `control/plugins` modules export. */
export function definePlugin<S extends ControlSpecs = Record<never, never>>(definition: PluginDefinition<S>): Plugin {
  if (!definition || typeof definition.name !== 'string' || !/^[@a-z0-9][@a-z0-9/._-]*$/i.test(definition.name)) {
    throw new TypeError(`definePlugin: a plugin needs a name of letters, digits and -._/@ (got ${JSON.stringify(definition?.name)})`);
  }
  if (typeof definition.register !== 'function') throw new TypeError(`definePlugin: plugin ${definition.name} has no register function`);
  return Object.freeze({ ...definition, [PLUGIN]: true }) as unknown as Plugin;
}

export function isPlugin(value: unknown): value is Plugin {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[PLUGIN] === true;
}
