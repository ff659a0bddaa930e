import { control, defer, definePlugin, Tokens, type Clock, type Connection, type Fail } from '@quail/core';
import { SlidingWindow } from './sliding-window.js';

/** A limit as written in a control file: `count/seconds`; a count of 0 means no limit. */
export interface RateLimit {
  count: number;
  seconds: number;
}

export function parseRate(raw: string, fail: Fail): RateLimit {
  const m = /^\s*(\d{1,9})\s*\/\s*(\d{1,9})\s*$/.exec(raw);
  if (!m) return fail(0, `"${raw.slice(0, 40)}" is not count/seconds (for example 100/3600)`);
  const rate = { count: Number(m[1]), seconds: Number(m[2]) };
  if (rate.seconds < 1) return fail(0, 'the window must be at least 1 second');
  return rate;
}

const rate = (description: string, value: string) => control.string({ description, default: value, parse: parseRate });

/** Who a limit applies to: the authenticated user, else the client address. */
function identity(conn: Connection): { key: string; kind: 'user' | 'ip'; name: string } {
  return conn.user !== undefined ? { key: `user ${conn.user.toLowerCase()}`, kind: 'user', name: conn.user } : { key: `ip ${conn.remoteAddress}`, kind: 'ip', name: conn.remoteAddress };
}

/**
 * Message and recipient rate limits. Every MAIL counts as a message of its
 * client: against `ratelimit.user` once the client authenticated, otherwise
 * against `ratelimit.ip`. Every RCPT counts against `ratelimit.rcpts` of the
 * same client. Over a limit, MAIL gets 451 and RCPT 452; nothing is recorded
 * for the refused command, so the client gets in again as the window slides.
 */
export const rateLimitPlugin = definePlugin({
  name: 'ratelimit',
  version: '0.1.0',
  description: 'per-IP and per-user message and recipient rate limits',
  control: {
    'ratelimit.ip': rate('messages per window from one client address (count/seconds)', '100/3600'),
    'ratelimit.user': rate('messages per window from one authenticated user (count/seconds)', '500/3600'),
    'ratelimit.rcpts': rate('recipients per window from one client or user (count/seconds)', '1000/3600'),
  },
  requires: [Tokens.Clock],
  register(ctx) {
    const messages = new SlidingWindow();
    const recipients = new SlidingWindow();
    let clock: Clock;
    ctx.hooks.init.tapPromise(ctx.name, async () => {
      clock = ctx.resolve(Tokens.Clock);
    });

    ctx.hooks.mail.tapPromise(ctx.name, async (tx) => {
      const who = identity(tx.connection);
      const limit = who.kind === 'user' ? ctx.config['ratelimit.user'] : ctx.config['ratelimit.ip'];
      if (limit.count === 0 || messages.take(who.key, clock.now(), limit.count, limit.seconds * 1000)) return undefined;
      ctx.log.warn({ ip: tx.connection.remoteAddress, user: tx.connection.user }, `message rate limit reached for ${who.kind} ${who.name}`);
      return defer(451, `too many messages from you: at most ${limit.count} per ${limit.seconds} seconds, try again later`, '4.7.0');
    });

    ctx.hooks.rcpt.tapPromise(ctx.name, async (tx) => {
      const who = identity(tx.connection);
      const limit = ctx.config['ratelimit.rcpts'];
      if (limit.count === 0 || recipients.take(who.key, clock.now(), limit.count, limit.seconds * 1000)) return undefined;
      ctx.log.warn({ ip: tx.connection.remoteAddress, user: tx.connection.user }, `recipient rate limit reached for ${who.kind} ${who.name}`);
      return defer(452, `too many recipients from you: at most ${limit.count} per ${limit.seconds} seconds, try again later`, '4.5.3');
    });
  },
});
