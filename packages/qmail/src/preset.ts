import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { QuailError, ErrorCodes, createServer, importPlugin, isPlugin, type Plugin, type QuailServer, type ServerOptions } from '@quail/core';
import smtpd from '@quail/plugin-smtpd';
import pop3 from '@quail/plugin-pop3';
import queue from '@quail/plugin-queue';
import vpopmail from '@quail/plugin-vpopmail';
import local from '@quail/plugin-local';
import remote from '@quail/plugin-remote';
import maildir from '@quail/plugin-maildir';

/**
 * The preset's plugin packages in tap order (the order `control/plugins` lists
 * them): listeners first so that on stop they close before the queue drains.
 */
export const PRESET_PACKAGES = [
  '@quail/plugin-smtpd',
  '@quail/plugin-pop3',
  '@quail/plugin-queue',
  '@quail/plugin-vpopmail',
  '@quail/plugin-local',
  '@quail/plugin-remote',
  '@quail/plugin-maildir',
] as const;

export type PresetPackage = (typeof PRESET_PACKAGES)[number];

const PLUGINS: Record<PresetPackage, Plugin> = {
  '@quail/plugin-smtpd': smtpd,
  '@quail/plugin-pop3': pop3,
  '@quail/plugin-queue': queue,
  '@quail/plugin-vpopmail': vpopmail,
  '@quail/plugin-local': local,
  '@quail/plugin-remote': remote,
  '@quail/plugin-maildir': maildir,
};

/** One preset plugin by package name, as imported by this package (so it resolves from here, not from the root). */
export function presetPlugin(name: PresetPackage): Plugin {
  const plugin = PLUGINS[name];
  if (!isPlugin(plugin)) throw new QuailError(ErrorCodes.PLUGIN_LOAD, `${name} does not export a plugin (default export made with definePlugin)`);
  return plugin;
}

/** The preset's plugins, in order. */
export function presetPlugins(): Plugin[] {
  return PRESET_PACKAGES.map(presetPlugin);
}

/**
 * Loads a `control/plugins` line: the preset's own packages come from the copies
 * this package imported (so they resolve wherever the preset is installed),
 * anything else (a site plugin) through core's importPlugin relative to the root.
 */
export function presetLoader(root: string): (specifier: string) => Promise<Plugin> {
  return async (specifier) => {
    if (Object.hasOwn(PLUGINS, specifier)) return presetPlugin(specifier as PresetPackage);
    return importPlugin(specifier, root);
  };
}

export interface QmailServerOptions extends Omit<ServerOptions, 'loadPlugin'> {
  /** Called with each plugin loaded from a name, in order (the daemon keeps them to validate reloads). */
  onPluginLoaded?: (plugin: Plugin) => void;
}

/**
 * The qmail + vpopmail server over a root. Plugins come from `control/plugins`
 * when it exists (as `quail init` writes it), otherwise the preset's list; the
 * preset's package names always resolve to this package's dependencies.
 */
export function createQmailServer(options: QmailServerOptions): QuailServer {
  const { onPluginLoaded, ...rest } = options;
  const plugins = rest.plugins ?? (existsSync(join(rest.root, 'control', 'plugins')) ? undefined : [...PRESET_PACKAGES]);
  const load = presetLoader(rest.root);
  return createServer({
    ...rest,
    ...(plugins && { plugins }),
    loadPlugin: async (specifier) => {
      const plugin = await load(specifier);
      onPluginLoaded?.(plugin);
      return plugin;
    },
  });
}
