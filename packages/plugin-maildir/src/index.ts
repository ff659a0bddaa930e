import { maildirPlugin } from './plugin.js';

export default maildirPlugin;
export { MaildirStore, type DeliverOptions, type MaildirStoreOptions } from './store.js';
export { MaildirMailbox, type ListOptions } from './mailbox.js';
export { CrlfCounter, CrlfTransform, LineConverter, type LineConversion } from './crlf.js';
export { parseFileName, normaliseFlags, type MaildirFileName } from './file-name.js';
export { UniqueNames, escapeHostName } from './unique-name.js';
export { formatQuota, parseQuotaDefinition, countUsage, MaildirSizeFile, type Usage } from './quota.js';
export { folderPath } from './folders.js';
