import { vpopmailPlugin } from './plugin.js';

export default vpopmailPlugin;
export { CLEAR_PASSWORD_FILE } from './plugin.js';
export { VpopmailAdmin, type VAliasInfo, type VDomainInfo, type VUserInfo, type VpopmailAdminOptions } from './admin.js';
export { formatDomainInfo, formatUserInfo } from './format.js';
export { VpopmailStore, type DomainLocation, type VpopmailStoreOptions } from './store.js';
export { VpopmailAuthenticator } from './auth.js';
export { FlagBits, flagsFromGid, type FlagName } from './flags.js';
export { hashPassword, verifyPassword, type HashScheme } from './passwords.js';
export { PasswordHasher, sharedPasswordHasher, type HasherMode, type PasswordHasherOptions } from './password-hasher.js';
export type { HashLibraries } from './hash-worker.js';
export { normaliseQuota, quotaFromField } from './quota.js';
export { parseVpasswd, formatVpasswdLine, type VpasswdEntry } from './vpasswd.js';
