import type { UserFlags } from '@quail/core';
import { invalid, shown } from './errors.js';

/** vpopmail's per-user flag bits (vpasswd field 4), reference 9.4. */
export const FlagBits = {
  noPassword: 0x01,
  noPop: 0x02,
  noWebmail: 0x04,
  noImap: 0x08,
  bounceMail: 0x10,
  noRelay: 0x20,
  noDialup: 0x40,
  user0: 0x80,
  user1: 0x100,
  user2: 0x200,
  user3: 0x400,
  noSmtp: 0x800,
  qaAdmin: 0x1000,
  override: 0x2000,
  noSpamassassin: 0x4000,
  deleteSpam: 0x8000,
  saAdmin: 0x10000,
  saExpert: 0x20000,
  noMaildrop: 0x40000,
} as const;

export type FlagName = keyof typeof FlagBits;

/** What vuserinfo prints for a set flag. */
export const FlagDescriptions: Record<FlagName, string> = {
  noPassword: 'password can not be changed by user',
  noPop: 'pop access closed',
  noWebmail: 'webmail access closed',
  noImap: 'imap access closed',
  bounceMail: 'mail will be bounced back to sender',
  noRelay: 'user not allowed to relay mail',
  noDialup: 'no dialup flag has been set',
  user0: 'user flag 0 is set',
  user1: 'user flag 1 is set',
  user2: 'user flag 2 is set',
  user3: 'user flag 3 is set',
  noSmtp: 'smtp access is closed',
  qaAdmin: 'has qmailadmin administrator privileges',
  override: 'domain limit override privileges',
  noSpamassassin: 'spam checking is disabled',
  deleteSpam: 'spam will be deleted',
  saAdmin: 'has system administrator privileges',
  saExpert: 'has system expert privileges',
  noMaildrop: 'mail will not be processed by maildrop',
};

export function flagsFromGid(gid: number): UserFlags {
  const flags: UserFlags = {};
  for (const [name, bit] of Object.entries(FlagBits)) flags[name] = (gid & bit) !== 0;
  return flags;
}

/** Applies a change (true sets, false clears, absent keeps) to a gid value. */
export function applyFlags(gid: number, change: Partial<UserFlags>): number {
  let next = gid;
  for (const [name, value] of Object.entries(change)) {
    if (value === undefined) continue;
    const bit = (FlagBits as Record<string, number>)[name];
    if (bit === undefined) throw invalid(`Unknown vpopmail flag: ${shown(name)}`);
    next = value ? next | bit : next & ~bit;
  }
  return next >>> 0;
}

export function setFlagNames(gid: number): FlagName[] {
  return (Object.keys(FlagBits) as FlagName[]).filter((n) => (gid & FlagBits[n]) !== 0);
}
