import { definePlugin, Tokens } from '@quail/core';
import { MaildirStore } from './store.js';

/** Provides the MailStore service: Maildir and Maildir++ with `maildirsize` quotas. */
export const maildirPlugin = definePlugin({
  name: 'maildir',
  version: '0.1.0',
  description: 'Maildir and Maildir++ store (MailStore service)',
  provides: [Tokens.MailStore],
  register(ctx) {
    ctx.provideFactory(Tokens.MailStore, () => new MaildirStore({ clock: ctx.resolve(Tokens.Clock), log: ctx.log }));
  },
});
