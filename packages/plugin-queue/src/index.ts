import { queuePlugin } from './plugin.js';

export { queuePlugin, type QueuePluginOptions } from './plugin.js';
export { StoreQueue } from './queue.js';
export { DiskQueueStore } from './disk-store.js';
export type { LoadedMessage, QueueStore, StoreCounts } from './store.js';
export { nodeQueueFs, type QueueFs } from './fs-seam.js';
export { routeRecipient, type RoutingControls } from './router.js';
export { nextAttempt, isDying } from './retry.js';
export { bounceHead, planBounce, DOUBLE_BOUNCE_SENDER } from './bounce.js';
export { formatQread, formatQstat, qmailDate, safeLogText } from './format.js';
export { receivedLine } from './writer.js';

const plugin = queuePlugin();
export default plugin;
