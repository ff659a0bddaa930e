import { control, definePlugin, qmailFiles, Stage, Tokens, type MailStore } from '@quail/core';
import { VpopmailAuthenticator } from './auth.js';
import { checkRecipient } from './chkuser.js';
import { PasswordHasher } from './password-hasher.js';
import { VpopmailStore } from './store.js';
import { VdeliverMail } from './vdelivermail.js';

/** Control file of this plugin: keep clear-text passwords in vpasswd field 8. */
export const CLEAR_PASSWORD_FILE = 'vpopmail.clearpasswd';

/**
 * vpopmail: virtual domains under `<root>/domains/`, the UserStore and
 * Authenticator services over their vpasswd files (password hashes checked on
 * worker threads, stopped with the server), vdelivermail as a `deliver` tap,
 * and chkuser's RCPT check.
 */
export const vpopmailPlugin = definePlugin({
  name: 'vpopmail',
  version: '0.1.0',
  description: 'virtual domains, vpasswd users, authentication and vdelivermail',
  control: {
    defaultdomain: qmailFiles.defaultdomain,
    virtualdomains: qmailFiles.virtualdomains,
    [CLEAR_PASSWORD_FILE]: control.int({
      description: "keep users' clear-text passwords in vpasswd field 8 (1, needed by APOP and CRAM-MD5) or not (0)",
      default: 1,
      schema: { enum: [0, 1] },
    }),
  },
  provides: [Tokens.UserStore, Tokens.Authenticator],
  requires: [Tokens.MailStore],
  register(ctx) {
    const store = new VpopmailStore(ctx.root, {
      defaultDomain: () => ctx.config.defaultdomain,
      virtualDomains: () => ctx.config.virtualdomains ?? {},
      warn: (message) => ctx.log.warn(message),
    });
    ctx.provide(Tokens.UserStore, store);
    const hasher = new PasswordHasher({ warn: (message) => ctx.log.warn(message) });
    ctx.provide(Tokens.Authenticator, new VpopmailAuthenticator(store, () => ctx.config[CLEAR_PASSWORD_FILE] === 1, hasher));
    // the first login after a start should not wait for the hashing threads to start
    ctx.hooks.start.tapPromise(ctx.name, async () => void hasher.warm());
    ctx.hooks.stop.tapPromise(ctx.name, () => hasher.close());

    let mailStore: MailStore | undefined;
    const vdelivermail = new VdeliverMail({
      store,
      mailStore: () => (mailStore ??= ctx.resolve(Tokens.MailStore)),
      dotQmail: () => ctx.resolveOptional(Tokens.DotQmail),
      queue: () => ctx.resolveOptional(Tokens.Queue),
      now: () => ctx.resolve(Tokens.Clock).now(),
      log: ctx.log,
    });
    ctx.hooks.deliver.tapPromise(ctx.name, (delivery) => vdelivermail.handle(delivery));
    ctx.hooks.rcpt.tapPromise({ name: ctx.name, stage: Stage.DEFAULT }, (_tx, recipient) => checkRecipient(store, recipient));
  },
});
