import { join } from 'node:path';
import { control, definePlugin, qmailFiles, Tokens } from '@quail/core';
import { DotQmailFileRunner } from './dot-qmail-runner.js';
import { LocalDelivery } from './local-delivery.js';
import { UsersAssign } from './users-assign.js';

/** qmail-lspawn + qmail-local: local deliveries through users/assign, the alias user and dot-qmail files. */
export const localPlugin = definePlugin({
  name: 'local',
  version: '0.1.0',
  description: 'qmail-local: dot-qmail delivery for users/assign users and the alias user',
  control: {
    defaultdelivery: qmailFiles.defaultdelivery,
    'local.timeout': control.int<number>({ description: 'seconds a program delivery may run before it is killed', default: 3600, schema: { minimum: 1 } }),
  },
  provides: [Tokens.DotQmail],
  requires: [Tokens.MailStore, Tokens.Queue],
  register(ctx) {
    const runner = new DotQmailFileRunner({
      mailStore: () => ctx.resolve(Tokens.MailStore),
      queue: () => ctx.resolve(Tokens.Queue),
      log: ctx.log,
      defaultDelivery: () => ctx.config.defaultdelivery,
      programTimeoutMs: () => ctx.config['local.timeout'] * 1000,
    });
    ctx.provide(Tokens.DotQmail, runner);
    const local = new LocalDelivery({ root: ctx.root, assign: new UsersAssign(join(ctx.root, 'users', 'assign')), runner, log: ctx.log });
    ctx.hooks.deliver.tapPromise(ctx.name, async (delivery) => (delivery.channel === 'local' ? local.deliver(delivery) : undefined));
  },
});
