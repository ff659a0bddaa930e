/**
 * Per-object plugin state, namespaced by plugin name so that two plugins never
 * share a key by accident. Plugins reach their own namespace through
 * `ctx.notes(obj)`; `notes.of(name)` is how a plugin reads another's, on purpose.
 */
export class Notes {
  readonly #byPlugin = new Map<string, Record<string, unknown>>();

  /** The namespace of one plugin, created empty on first use. */
  of<T extends Record<string, unknown> = Record<string, unknown>>(plugin: string): T {
    let ns = this.#byPlugin.get(plugin);
    if (!ns) {
      ns = {};
      this.#byPlugin.set(plugin, ns);
    }
    return ns as T;
  }

  has(plugin: string): boolean {
    return this.#byPlugin.has(plugin);
  }

  clear(): void {
    this.#byPlugin.clear();
  }
}
