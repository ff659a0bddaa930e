import { smtpdPlugin } from './plugin.js';

export default smtpdPlugin;
export { smtpdPlugin, smtpdListeners, smtpdControl, type ListenerInfo } from './plugin.js';
export { TcpRules, lookupKeys, type RuleDecision, type RulePeer } from './tcprules.js';
export { parseListenLines, type ListenAddress } from './listen.js';
export { parsePath, MAX_ADDRESS, type ParsedPath } from './address.js';
export { DataDecoder, HopCounter, type DecodeResult } from './data-decoder.js';
export { receivedLine, receivedDate, type ReceivedInfo } from './received.js';
export { SpoolQueue, spoolQueuePlugin } from './spool-queue.js';
export type { ListenerKind } from './settings.js';
