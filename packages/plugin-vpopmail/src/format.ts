import type { VDomainInfo, VUserInfo } from './admin.js';
import { FlagDescriptions, setFlagNames } from './flags.js';

/** vuserinfo's block for one account. */
export function formatUserInfo(info: VUserInfo): string {
  const lines = [
    `name:   ${info.name}`,
    `passwd: ${info.passwd}`,
    `clear passwd: ${info.clearPassword ?? ''}`,
    `comment/gecos: ${info.gecos}`,
    `uid:    ${info.uid}`,
    `gid:    ${info.gid}`,
    `flags:  ${info.gid}`,
    ...setFlagNames(info.gid).map((f) => `        ${FlagDescriptions[f]}`),
    `gecos: ${info.gecos}`,
    `limits: No user limits set.`,
    `dir:       ${info.home}`,
    `quota:     ${info.quota}`,
    `usage:     ${info.usagePercent === undefined ? 'NOQUOTA' : `${info.usagePercent}%`} (${info.usage.bytes} bytes, ${info.usage.messages} messages)`,
    `last auth: ${info.lastAuth ? info.lastAuth.toUTCString() : 'Never logged in'}`,
  ];
  return lines.join('\n') + '\n';
}

/** vdominfo's block for one domain. */
export function formatDomainInfo(info: VDomainInfo): string {
  const lines = [
    info.alias ? `domain: ${info.domain} (alias of ${info.realDomain})` : `domain: ${info.domain}`,
    `uid:    ${info.uid}`,
    `gid:    ${info.gid}`,
    `dir:    ${info.dir}`,
    `users:  ${info.users}`,
  ];
  if (!info.alias && info.aliasDomains.length > 0) lines.push(`aliases: ${info.aliasDomains.join(' ')}`);
  return lines.join('\n') + '\n';
}
