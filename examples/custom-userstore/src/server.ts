import type { Plugin } from '@quail/core';
import { presetPlugins } from '@quail/qmail';
import { jsonUsersPlugin } from './plugin.js';

/** The qmail preset's plugins, in the preset's order, with plugin-vpopmail swapped for json-users. */
export function customPlugins(): Plugin[] {
  return presetPlugins().map((plugin) => (plugin.name === 'vpopmail' ? jsonUsersPlugin : plugin));
}
