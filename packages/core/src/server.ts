import 'reflect-metadata';
import { container as globalContainer, type DependencyContainer } from 'tsyringe';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { systemClock } from './clock.js';
import { ControlDirectory, type ControlSnapshot } from './control/loader.js';
import { listLines, splitLines } from './control/read.js';
import { control } from './control/spec.js';
import { ConfigError, ConfigErrors, ErrorCodes, QuailError } from './errors.js';
import { createHooks, type KernelHooks } from './hooks.js';
import { createLogger, type LoggerOptions } from './logger.js';
import { MailparserMessageParser } from './mailparser-parser.js';
import type { Notes } from './notes.js';
import { isPlugin, type Plugin, type PluginContext } from './plugin.js';
import { LoginThrottle, throttledAuthenticator } from './login-throttle.js';
import { createDnsResolver } from './resolver.js';
import { Tokens, type Authenticator, type Logger, type ServiceToken } from './services.js';

export interface ServerOptions {
  /** The server root: control/, queue/, domains/ ... live below it. */
  root: string;
  /**
   * Plugins in tap order. Strings are module specifiers (package names, or paths
   * relative to the root). When absent, `control/plugins` lists them.
   */
  plugins?: Array<Plugin | string>;
  /** Turns a `control/plugins` line into a plugin; the default imports it. */
  loadPlugin?: (specifier: string) => Promise<Plugin>;
  logger?: Logger;
  log?: LoggerOptions;
  /** Services registered before any plugin: replace core defaults (Clock, Resolver, ...) in tests. */
  services?: Array<[ServiceToken<unknown>, unknown]>;
  /** Parent container; the server always works in its own child. */
  container?: DependencyContainer;
}

export type ServerState = 'created' | 'starting' | 'running' | 'stopping' | 'stopped' | 'failed';

/** Services core registers itself; a plugin may provide a replacement. */
const CORE_DEFAULTS: ReadonlyArray<ServiceToken<unknown>> = [Tokens.Clock, Tokens.MessageParser, Tokens.Resolver];

const coreControl = {
  plugins: control.list({ description: 'plugins to load, in order (package name or path relative to the root)' }),
  loginfailures: control.int({
    description: 'failed logins (SMTP AUTH, POP3) from one address before its logins are refused for loginwindow seconds; 0: no limit',
    default: 10,
    schema: { minimum: 0 },
  }),
  loginwindow: control.int({ description: 'seconds a failed login is remembered, and an address stays refused', default: 900, schema: { minimum: 1 } }),
};

/** A quail server: plugins composed over one control directory. */
export class QuailServer {
  readonly root: string;
  readonly hooks: KernelHooks;
  readonly container: DependencyContainer;
  readonly log: Logger;
  #state: ServerState = 'created';
  #snapshot?: ControlSnapshot;
  #plugins: Plugin[] = [];
  readonly #control: ControlDirectory;
  readonly #options: ServerOptions;
  #throttle?: LoginThrottle;

  constructor(options: ServerOptions) {
    this.#options = options;
    this.root = resolve(options.root);
    this.log = options.logger ?? createLogger(options.log);
    this.hooks = createHooks(this.log);
    this.container = (options.container ?? globalContainer).createChildContainer();
    this.#control = new ControlDirectory(this.root);
    this.#control.declare('quail', coreControl);
  }

  get state(): ServerState {
    return this.#state;
  }

  /** The control snapshot in force. */
  get control(): ControlSnapshot {
    if (!this.#snapshot) throw new QuailError(ErrorCodes.STATE, 'the server has not loaded its control files yet');
    return this.#snapshot;
  }

  /** Names of the loaded plugins, in tap order. */
  get plugins(): string[] {
    return this.#plugins.map((p) => p.name);
  }

  resolve<T>(token: ServiceToken<T>): T {
    return this.container.resolve<T>(token);
  }

  /** Loads plugins and control files, registers everything, runs init and start. */
  async start(): Promise<void> {
    if (this.#state !== 'created') throw new QuailError(ErrorCodes.STATE, `cannot start a server that is ${this.#state}`);
    this.#state = 'starting';
    try {
      this.#registerCoreServices();
      this.#plugins = await this.#loadPlugins();
      checkNames(this.#plugins);
      for (const p of this.#plugins) if (p.control) this.#control.declare(p.name, p.control);
      const provided = checkServices(this.#plugins);
      this.#snapshot = await this.#control.load();
      for (const plugin of this.#plugins) await plugin.register(this.#context(plugin));
      for (const [token, plugin] of provided) {
        if (!this.container.isRegistered(token, false)) {
          throw new QuailError(ErrorCodes.SERVICE_NOT_REGISTERED, `plugin ${plugin} declares that it provides ${tokenName(token)} but did not register it`);
        }
      }
      await this.hooks.init.promise();
      await this.hooks.start.promise();
      this.#state = 'running';
      this.log.info({ plugins: this.plugins }, `quail started in ${this.root}`);
    } catch (err) {
      this.#state = 'failed';
      await this.hooks.stop.promise().catch(() => undefined);
      throw err;
    }
  }

  /** Runs the stop hook (listeners close, deliveries finish) and marks the server stopped. */
  async stop(): Promise<void> {
    if (this.#state === 'stopped' || this.#state === 'stopping') return;
    if (this.#state !== 'running') throw new QuailError(ErrorCodes.STATE, `cannot stop a server that is ${this.#state}`);
    this.#state = 'stopping';
    await this.hooks.stop.promise();
    this.#state = 'stopped';
    this.log.info('quail stopped');
  }

  /**
   * Re-reads the control directory. The new snapshot replaces the old one only
   * when all of it is valid; otherwise the old one stays and the errors are logged.
   */
  async reload(): Promise<boolean> {
    if (this.#state !== 'running') throw new QuailError(ErrorCodes.STATE, `cannot reload a server that is ${this.#state}`);
    let next: ControlSnapshot;
    try {
      next = await this.#control.load();
    } catch (err) {
      const lines = err instanceof ConfigErrors ? err.errors.map((e) => e.message) : [String((err as Error).message)];
      for (const line of lines) this.log.error(`reload refused, old configuration stays: ${line}`);
      return false;
    }
    this.#snapshot = next;
    await this.hooks.reload.promise();
    this.log.info('control files reloaded');
    return true;
  }

  /** Every Authenticator a plugin provides sits behind the server's login throttle. */
  #guard<T>(token: ServiceToken<T>, service: T): T {
    if (token !== Tokens.Authenticator) return service;
    this.#throttle ??= new LoginThrottle(this.container.resolve(Tokens.Clock), () => ({
      maxFailures: this.control.get('loginfailures') as number,
      windowSeconds: this.control.get('loginwindow') as number,
    }));
    return throttledAuthenticator(service as Authenticator, this.#throttle) as T;
  }

  #registerCoreServices(): void {
    const c = this.container;
    c.registerInstance(Tokens.Logger, this.log);
    c.registerInstance(Tokens.Clock, systemClock);
    c.registerInstance(Tokens.MessageParser, new MailparserMessageParser());
    c.register(Tokens.Resolver, { useFactory: () => createDnsResolver() });
    for (const [token, value] of this.#options.services ?? []) c.registerInstance(token, value);
  }

  async #loadPlugins(): Promise<Plugin[]> {
    const load = this.#options.loadPlugin ?? ((s: string) => importPlugin(s, this.root));
    const list = this.#options.plugins ?? (await this.#readPluginList());
    const plugins: Plugin[] = [];
    for (const item of list) plugins.push(typeof item === 'string' ? await load(item) : item);
    return plugins;
  }

  async #readPluginList(): Promise<string[]> {
    let data: Buffer;
    try {
      data = await readFile(join(this.root, 'control', 'plugins'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new QuailError(ErrorCodes.PLUGIN_LOAD, `no plugins: ${join(this.root, 'control', 'plugins')} does not exist and none were given`);
      }
      throw err;
    }
    return listLines(splitLines('plugins', data)).map((l) => l.text);
  }

  #context(plugin: Plugin): PluginContext {
    const server = this;
    const declared = new Set(plugin.provides ?? []);
    const checkDeclared = (token: ServiceToken<unknown>) => {
      if (!declared.has(token)) {
        throw new QuailError(ErrorCodes.SERVICE_NOT_REGISTERED, `plugin ${plugin.name} registers ${tokenName(token)} without declaring it in provides`);
      }
    };
    return {
      name: plugin.name,
      root: this.root,
      hooks: this.hooks,
      container: this.container,
      get config() {
        return server.control.configFor(plugin.name);
      },
      get control() {
        return server.control;
      },
      log: this.log.child({ plugin: plugin.name }),
      provide: (token, service) => {
        checkDeclared(token);
        this.container.registerInstance(token, this.#guard(token, service));
      },
      provideFactory: (token, factory) => {
        checkDeclared(token);
        let made: { value: unknown } | undefined;
        this.container.register(token, { useFactory: () => (made ??= { value: this.#guard(token, factory()) }).value });
      },
      resolve: (token) => this.container.resolve(token),
      resolveOptional: (token) => (this.container.isRegistered(token, true) ? this.container.resolve(token) : undefined),
      notes: <T extends Record<string, unknown>>(holder: { notes: Notes }) => holder.notes.of<T>(plugin.name),
      reload: () => this.reload(),
    };
  }
}

export function createServer(options: ServerOptions): QuailServer {
  return new QuailServer(options);
}

export function tokenName(token: ServiceToken<unknown>): string {
  return (token.description ?? String(token)).replace(/^quail\.service\./, '');
}

function checkNames(plugins: Plugin[]): void {
  const seen = new Set<string>();
  for (const p of plugins) {
    if (seen.has(p.name)) throw new QuailError(ErrorCodes.PLUGIN_DUPLICATE, `two plugins are named ${p.name}: each plugin may be loaded once`);
    seen.add(p.name);
  }
}

/** Fails on two providers of one token or a requirement nobody provides; returns token → provider. */
function checkServices(plugins: Plugin[]): Map<ServiceToken<unknown>, string> {
  const providers = new Map<ServiceToken<unknown>, string>();
  for (const p of plugins) {
    for (const token of p.provides ?? []) {
      const other = providers.get(token);
      if (other) {
        throw new QuailError(ErrorCodes.SERVICE_DUPLICATE, `plugins ${other} and ${p.name} both provide ${tokenName(token)}: remove one of them`);
      }
      providers.set(token, p.name);
    }
  }
  for (const p of plugins) {
    for (const token of p.requires ?? []) {
      if (!providers.has(token) && !CORE_DEFAULTS.includes(token) && token !== Tokens.Logger) {
        throw new QuailError(ErrorCodes.SERVICE_MISSING, `plugin ${p.name} requires ${tokenName(token)}, which no loaded plugin provides`);
      }
    }
  }
  return providers;
}

/** Imports a plugin module: a path relative to the root, or a package resolvable from the root or the working directory. */
export async function importPlugin(specifier: string, root: string): Promise<Plugin> {
  let url: string;
  if (specifier.startsWith('.') || isAbsolute(specifier)) {
    url = pathToFileURL(resolve(root, specifier)).href;
  } else {
    url = resolvePackage(specifier, [join(root, 'noop.js'), join(process.cwd(), 'noop.js')]) ?? specifier;
  }
  let mod: Record<string, unknown>;
  try {
    mod = (await import(url)) as Record<string, unknown>;
  } catch (err) {
    throw new QuailError(ErrorCodes.PLUGIN_LOAD, `control/plugins: cannot load ${specifier}: ${(err as Error).message}`, { cause: err });
  }
  for (const candidate of [mod.default, mod.plugin]) {
    const value = typeof candidate === 'function' ? (candidate as () => unknown)() : candidate;
    if (isPlugin(value)) return value;
  }
  throw new QuailError(ErrorCodes.PLUGIN_LOAD, `control/plugins: ${specifier} does not export a plugin (default export made with definePlugin)`);
}

function resolvePackage(name: string, from: string[]): string | undefined {
  for (const base of from) {
    try {
      return pathToFileURL(createRequire(base).resolve(name)).href;
    } catch {
      // not resolvable from here; try the next base
    }
  }
  return undefined;
}

export { ConfigError };
