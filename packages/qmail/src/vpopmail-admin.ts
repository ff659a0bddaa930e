import { VpopmailAdmin } from '@quail/plugin-vpopmail';

export { formatDomainInfo, formatUserInfo } from '@quail/plugin-vpopmail';

/**
 * The v* commands' work on a root. Clear-text passwords follow
 * control/vpopmail.clearpasswd, which is on unless set to 0 (the preset keeps
 * them, as vpopmail's --enable-clear-passwd does, for APOP, CRAM-MD5 and vuserinfo).
 */
export function openVpopmailAdmin(root: string): VpopmailAdmin {
  return new VpopmailAdmin(root);
}
