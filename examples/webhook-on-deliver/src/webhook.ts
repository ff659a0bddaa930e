import { createHmac } from 'node:crypto';
import { control, definePlugin, Tokens, type Clock, type Delivery, type Fail } from '@quail/core';

/** The JSON body POSTed for each local recipient delivered. */
export interface DeliverySummary {
  event: 'delivered';
  /** quail's queue id of the message. */
  queueId: string;
  sender: string;
  recipient: string;
  /** The address local delivery worked with (after virtualdomains). */
  address: string;
  /** The delivery report (`did 1+0+0`). */
  result: string;
  subject: string | null;
  messageId: string | null;
  /** Octets as stored. */
  size: number;
  /** ISO time the delivery finished (the Clock service's time). */
  deliveredAt: string;
}

function parseUrl(raw: string, fail: Fail): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return fail(0, `"${raw.slice(0, 80)}" is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return fail(0, `only http: and https: URLs are posted to, not ${url.protocol}`);
  return url;
}

/**
 * Observes the `delivered` hook and, for every recipient of a local delivery
 * that succeeded, POSTs a `DeliverySummary` as JSON to `webhook.url`. With
 * `webhook.secret` the body is signed: `X-Quail-Signature: sha256=<hex HMAC>`.
 * Posting never holds up the queue: it runs beside it, once per recipient,
 * bounded by `webhook.timeout`; a failure is logged. `stop` waits for posts in flight.
 */
export const webhookPlugin = definePlugin({
  name: 'webhook',
  version: '0.1.0',
  description: 'POSTs a JSON summary of each local delivery to an HTTP endpoint',
  control: {
    'webhook.url': control.string({ description: 'where summaries are POSTed (http or https URL)', parse: parseUrl }),
    'webhook.secret': control.string({ description: 'key for the X-Quail-Signature HMAC-SHA256 of the body' }),
    'webhook.timeout': control.int({ description: 'milliseconds one POST may take', default: 5000, schema: { minimum: 1 } }),
  },
  requires: [Tokens.Clock],
  register(ctx) {
    const inflight = new Set<Promise<void>>();
    let clock: Clock;
    ctx.hooks.init.tapPromise(ctx.name, async () => {
      clock = ctx.resolve(Tokens.Clock);
    });

    const post = async (url: URL, summary: DeliverySummary): Promise<void> => {
      const body = JSON.stringify(summary);
      const headers: Record<string, string> = { 'content-type': 'application/json', 'user-agent': 'quail-webhook/0.1' };
      const secret = ctx.config['webhook.secret'];
      if (secret) headers['x-quail-signature'] = `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
      try {
        const response = await fetch(url, { method: 'POST', headers, body, signal: AbortSignal.timeout(ctx.config['webhook.timeout']) });
        await response.arrayBuffer();
        if (!response.ok) ctx.log.warn({ queueId: summary.queueId, status: response.status }, `webhook ${url.origin} answered ${response.status} for ${summary.recipient}`);
      } catch (err) {
        ctx.log.warn({ queueId: summary.queueId }, `webhook ${url.origin} failed for ${summary.recipient}: ${(err as Error).message}`);
      }
    };

    const summarise = async (delivery: Delivery, index: number, text: string): Promise<DeliverySummary> => {
      const headers = await delivery.message.headers();
      const target = delivery.recipients[index]!;
      return {
        event: 'delivered',
        queueId: delivery.messageId,
        sender: delivery.sender,
        recipient: target.recipient,
        address: target.route.address,
        result: text.trim(),
        subject: headers.get('subject') ?? null,
        messageId: headers.get('message-id') ?? null,
        size: delivery.message.size,
        deliveredAt: new Date(clock.now()).toISOString(),
      };
    };

    ctx.hooks.delivered.tapPromise(ctx.name, async (delivery, results) => {
      const url = ctx.config['webhook.url'];
      if (!url || delivery.channel !== 'local') return;
      results.forEach((result, i) => {
        if (result.kind !== 'success') return;
        const job = summarise(delivery, i, result.text)
          .then((summary) => post(url, summary))
          .catch((err: Error) => ctx.log.warn(`webhook: cannot summarise delivery ${delivery.id}: ${err.message}`))
          .finally(() => inflight.delete(job));
        inflight.add(job);
      });
    });

    ctx.hooks.stop.tapPromise(ctx.name, async () => {
      await Promise.all(inflight);
    });
  },
});
