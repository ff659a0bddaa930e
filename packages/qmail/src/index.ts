export { PRESET_PACKAGES, createQmailServer, presetLoader, presetPlugin, presetPlugins, type PresetPackage, type QmailServerOptions } from './preset.js';
export { initRoot, type InitOptions, type InitReport } from './init.js';
export { fixMessage, qualify, qmailDate, type FixedMessage, type InjectDefaults, type InjectRequest, type RecipientSource } from './inject.js';
export { formatShowctl, loadSnapshot, presetControlDirectory } from './showctl.js';
export { tai64n, parseTai64n } from './tai64n.js';
export { MultilogWriter, type MultilogOptions, type LogStamp } from './daemon/multilog.js';
export { Supervisor, type DaemonOptions } from './daemon/supervisor.js';
export { defaultRoot } from './root.js';
