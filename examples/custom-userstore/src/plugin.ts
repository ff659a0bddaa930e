import { isAbsolute, join } from 'node:path';
import {
  control,
  deny,
  definePlugin,
  ErrorCodes,
  deferral,
  failure,
  QuailError,
  qmailFiles,
  success,
  Tokens,
  type DeliveryResult,
  type MailStore,
  type MessageSource,
  type Quota,
} from '@quail/core';
import { JsonUserStore } from './json-user-store.js';

/**
 * `json-users`: a drop-in for plugin-vpopmail's services. Provides UserStore and
 * Authenticator from a JSON file, refuses unknown users of its domains at RCPT,
 * and delivers local mail for its domains (virtualdomains `domain:domain`) to
 * `<root>/mail/<domain>/<user>/Maildir` through the MailStore.
 */
export const jsonUsersPlugin = definePlugin({
  name: 'json-users',
  version: '0.1.0',
  description: 'users, logins and mailboxes from a JSON file',
  control: {
    'jsonusers.file': control.string({ description: 'the users file, relative to the root', default: 'users.json' }),
    defaultdomain: qmailFiles.defaultdomain,
  },
  provides: [Tokens.UserStore, Tokens.Authenticator],
  requires: [Tokens.MailStore],
  register(ctx) {
    const file = ctx.config['jsonusers.file'];
    const store = new JsonUserStore({
      file: isAbsolute(file) ? file : join(ctx.root, file),
      mailRoot: join(ctx.root, 'mail'),
      defaultDomain: () => ctx.config.defaultdomain,
      onError: (message) => ctx.log.error(message),
    });
    ctx.provide(Tokens.UserStore, store);
    ctx.provide(Tokens.Authenticator, store);
    let mailStore: MailStore;

    /** maildirmake for every user, so POP3 finds an empty mailbox before the first delivery. */
    const makeMaildirs = async () => {
      const users = await store.load();
      for (const [domain, entry] of users.domains) {
        for (const name of entry.users.keys()) await mailStore.create(join(store.home(domain, name), 'Maildir'));
        const virtual = ctx.control.get('virtualdomains') as Record<string, string> | undefined;
        if (virtual?.[domain] !== domain) ctx.log.warn(`${domain} is in ${store.file} but control/virtualdomains has no "${domain}:${domain}" line: its mail is not routed here`);
      }
    };
    ctx.hooks.init.tapPromise(ctx.name, async () => {
      mailStore = ctx.resolve(Tokens.MailStore);
      await makeMaildirs();
    });
    ctx.hooks.reload.tapPromise(ctx.name, makeMaildirs);

    ctx.hooks.rcpt.tapPromise(ctx.name, async (_tx, recipient) => {
      if (!(await store.hasDomain(recipient.domain))) return undefined;
      const name = recipient.local.toLowerCase().split('-')[0]!;
      if (await store.lookup(`${name}@${recipient.domain}`)) return undefined;
      return deny(550, 'sorry, no mailbox here by that name.', '5.1.1');
    });

    ctx.hooks.deliver.tapPromise(ctx.name, async (delivery) => {
      const target = delivery.recipients[0];
      const prefix = target?.route.prefix;
      if (delivery.channel !== 'local' || !target || !prefix || !(await store.load()).domains.has(prefix)) return undefined;
      // qmail-send rewrote the address to <prefix>-<local>@<domain>; an extension follows the user name after a dash.
      const address = target.route.address;
      const local = address.slice(0, address.lastIndexOf('@')).slice(prefix.length + 1);
      const user = await store.lookup(`${local.split('-')[0]}@${prefix}`);
      if (!user) return failure('Sorry, no mailbox here by that name. (#5.1.1)');
      const deliveredTo = `Delivered-To: ${address}`;
      if ((await delivery.message.headers()).getAll('delivered-to').some((v) => `Delivered-To: ${v}` === deliveredTo)) {
        return failure('This message is looping: it already has my Delivered-To line. (#5.4.6)');
      }
      return deliverTo(mailStore, user.maildir, delivery.message.source, `Return-Path: <${delivery.sender}>\n${deliveredTo}\n`, user.quota);
    });
  },
});

async function deliverTo(
  mailStore: MailStore,
  maildir: string,
  source: MessageSource,
  prepend: string,
  quota: Quota | undefined,
): Promise<DeliveryResult> {
  try {
    await mailStore.create(maildir); // a user added to the file since the last reload has none yet
    await mailStore.deliver(maildir, source, { prepend, ...(quota && { quota }) });
    return success('did 1+0+0');
  } catch (err) {
    if (err instanceof QuailError && err.code === ErrorCodes.QUOTA) return failure(`${err.message} (#5.2.2)`);
    return deferral(`Unable to deliver to ${maildir}: ${(err as Error).message} (#4.3.0)`);
  }
}
