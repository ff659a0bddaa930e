import { isIPv4, isIPv6 } from 'node:net';
import { join, isAbsolute } from 'node:path';
import { control, defer, definePlugin, Tokens, type Clock } from '@quail/core';
import { TripletStore } from './triplet-store.js';

const seconds = (description: string, value: number) => control.int({ description, default: value, schema: { minimum: 0 } });

/**
 * Greylisting on `rcpt`: the first attempt of an unknown (client /24, sender,
 * recipient) triplet is deferred with 451; a retry after `greylist.delay`
 * seconds passes, and the triplet keeps passing while it is in use. Clients
 * allowed to relay (tcprules RELAYCLIENT, SMTP AUTH) are never greylisted.
 */
export const greylistPlugin = definePlugin({
  name: 'greylist',
  version: '0.1.0',
  description: 'defers first attempts of unknown (network, sender, recipient) triplets',
  control: {
    'greylist.delay': seconds('seconds before a retry of a new triplet is accepted', 300),
    'greylist.retrywindow': seconds('seconds a new triplet waits for its retry before it is forgotten', 4 * 3600),
    'greylist.passlifetime': seconds('seconds a passed triplet keeps passing after its last use', 35 * 86400),
    'greylist.state': control.string({ description: 'the state file, relative to the root', default: 'greylist/triplets.json' }),
  },
  requires: [Tokens.Clock],
  register(ctx) {
    let clock: Clock;
    let store: TripletStore;
    ctx.hooks.init.tapPromise(ctx.name, async () => {
      clock = ctx.resolve(Tokens.Clock);
      const file = ctx.config['greylist.state'];
      store = new TripletStore(isAbsolute(file) ? file : join(ctx.root, file));
      await store.load(ctx.log);
    });

    ctx.hooks.rcpt.tapPromise(ctx.name, async (tx, recipient) => {
      const conn = tx.connection;
      if (conn.relaying) return undefined;
      const now = clock.now();
      const delay = ctx.config['greylist.delay'] * 1000;
      const window = ctx.config['greylist.retrywindow'] * 1000;
      const lifetime = ctx.config['greylist.passlifetime'] * 1000;
      const key = [clientNetwork(conn.remoteAddress), (tx.sender?.address ?? '').toLowerCase(), recipient.address.toLowerCase()].join(' ');
      store.prune((r) => (r.passedAt === undefined ? now - r.firstSeen > window : now - r.lastSeen > lifetime));
      const known = store.get(key);
      if (known?.passedAt !== undefined) {
        await store.set(key, { ...known, lastSeen: now });
        return undefined;
      }
      if (known && now - known.firstSeen >= delay) {
        await store.set(key, { ...known, lastSeen: now, passedAt: now });
        ctx.log.info({ ip: conn.remoteAddress, triplet: key }, 'greylist passed after retry');
        return undefined;
      }
      if (!known) await store.set(key, { firstSeen: now, lastSeen: now });
      ctx.log.info({ ip: conn.remoteAddress, triplet: key }, 'greylisted');
      return defer(451, 'greylisted, please try again later', '4.7.1');
    });
  },
});

/** The client's network as greylisting sees it: the /24 of an IPv4 address, the /64 of an IPv6 one. */
export function clientNetwork(ip: string): string {
  if (isIPv4(ip)) return `${ip.split('.').slice(0, 3).join('.')}.0/24`;
  if (!isIPv6(ip)) return ip;
  const [head = '', tail] = ip.toLowerCase().split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return `${groups.slice(0, 4).map((g) => g.padStart(4, '0')).join(':')}::/64`;
}
