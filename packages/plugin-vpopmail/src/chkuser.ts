import { deny, type EnvelopeAddress, type HookResult } from '@quail/core';
import { findExtensionFile, findRecipientUser } from './recipients.js';
import type { VpopmailStore } from './store.js';

/**
 * The chkuser check at RCPT: a recipient of a vpopmail domain whose unknown
 * users would bounce (bounce-no-mailbox) must be a user or a valias entry, else
 * `550 sorry, no mailbox here by that name. (#5.1.1)`. Domains with a catch-all
 * or `delete`, and domains this store does not serve, pass (undefined).
 */
export async function checkRecipient(store: VpopmailStore, recipient: EnvelopeAddress): Promise<HookResult> {
  if (!recipient.domain) return undefined;
  const location = await store.resolveDomain(recipient.domain);
  if (!location) return undefined;
  const action = await store.domainFiles.defaultAction(location.dir);
  if (action.kind !== 'bounce' && action.kind !== 'none') return undefined;
  if (await findExtensionFile(store, location.dir, recipient.local)) return undefined;
  if (await findRecipientUser(store, recipient.local, location.domain)) return undefined;
  return deny(550, 'sorry, no mailbox here by that name.', '5.1.1');
}
