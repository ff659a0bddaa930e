import { createHmac } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { defaultPlugins, startTestServer, type TestServer } from '@quail/testkit';
import { webhookPlugin, type DeliverySummary } from '../src/webhook.js';

interface Received {
  headers: IncomingMessage['headers'];
  method: string;
  url: string;
  body: string;
}

let http: Server;
let received: Received[];
let status: number;
let waiters: Array<() => void>;
let kit: TestServer | undefined;

beforeEach(async () => {
  received = [];
  waiters = [];
  status = 204;
  http = createHttpServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ headers: req.headers, method: req.method!, url: req.url!, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(status).end();
      for (const w of waiters.splice(0)) w();
    });
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
});
afterEach(async () => {
  await kit?.stop();
  kit = undefined;
  await new Promise((resolve) => http.close(resolve));
});

const endpoint = () => `http://127.0.0.1:${(http.address() as AddressInfo).port}/hooks/mail`;

async function requests(count: number): Promise<Received[]> {
  while (received.length < count) await new Promise<void>((resolve) => waiters.push(resolve));
  return received;
}

describe('webhook on local delivery', () => {
  it('POSTs a signed JSON summary for each recipient delivered', async () => {
    kit = await startTestServer({
      plugins: [...defaultPlugins(), webhookPlugin],
      users: ['joe', 'sue'],
      control: { 'webhook.url': endpoint(), 'webhook.secret': 's3cret' },
    });
    await kit.send({ from: 'ann@example.org', to: ['joe@quail.test', 'sue-news@quail.test'], subject: 'Quarterly report', messageId: '<r1@example.org>' });
    const posts = await requests(2);
    const bodies = posts.map((p) => JSON.parse(p.body) as DeliverySummary).sort((a, b) => a.recipient.localeCompare(b.recipient));
    expect(bodies).toEqual([
      expect.objectContaining({ event: 'delivered', sender: 'ann@example.org', recipient: 'joe@quail.test', address: 'joe@quail.test', result: 'did 1+0+0', subject: 'Quarterly report', messageId: '<r1@example.org>' }),
      expect.objectContaining({ recipient: 'sue-news@quail.test', address: 'sue-news@quail.test' }),
    ]);
    expect(bodies[0]!.queueId).toBe(bodies[1]!.queueId);
    expect(bodies[0]!.size).toBeGreaterThan(100);
    expect(Number.isNaN(Date.parse(bodies[0]!.deliveredAt))).toBe(false);
    for (const p of posts) {
      expect(p.method).toBe('POST');
      expect(p.url).toBe('/hooks/mail');
      expect(p.headers['content-type']).toBe('application/json');
      expect(p.headers['x-quail-signature']).toBe(`sha256=${createHmac('sha256', 's3cret').update(p.body).digest('hex')}`);
    }
    expect(await kit.waitForMessages('joe')).toHaveLength(1);
  });

  it('posts nothing for a failed local delivery', async () => {
    kit = await startTestServer({ plugins: [...defaultPlugins(), webhookPlugin], users: ['joe'], control: { 'webhook.url': endpoint() } });
    await kit.send({ from: 'ann@example.org', to: 'nobody@quail.test' });
    await kit.send({ from: 'ann@example.org', to: 'joe@quail.test' });
    await kit.waitForMessages('joe');
    await requests(1);
    await kit.settle();
    // stop waits for every post in flight, so a post for the failure would be here by now
    await kit.stop();
    kit = undefined;
    expect(received.map((r) => JSON.parse(r.body).recipient)).toEqual(['joe@quail.test']);
  });

  it('logs an endpoint that refuses, and the mail is delivered all the same', async () => {
    status = 503;
    const lines: string[] = [];
    kit = await startTestServer({
      plugins: [...defaultPlugins(), webhookPlugin],
      users: ['joe'],
      control: { 'webhook.url': endpoint() },
      log: { level: 'warn', write: (line) => lines.push(line) },
    });
    await kit.send({ from: 'ann@example.org', to: 'joe@quail.test' });
    await requests(1);
    await kit.stop();
    expect(lines.join('\n')).toMatch(/webhook http:\/\/127\.0\.0\.1:\d+ answered 503 for joe@quail\.test/);
    kit = undefined;
  });

  it('refuses a webhook.url that is not http(s), naming file and line', async () => {
    await expect(startTestServer({ plugins: [...defaultPlugins(), webhookPlugin], control: { 'webhook.url': 'file:///etc/passwd' } })).rejects.toThrow(
      'control/webhook.url:1: only http: and https: URLs are posted to, not file:',
    );
  });
});
