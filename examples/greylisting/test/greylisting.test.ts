import { readdir, readFile, writeFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock, defaultPlugins, startTestServer, type TestServer } from '@quail/testkit';
import { clientNetwork, greylistPlugin } from '../src/greylist.js';
import { TripletStore } from '../src/triplet-store.js';

const GREYLISTED = '451 greylisted, please try again later (#4.7.1)';

let kit: TestServer;
let clock: ManualClock;

beforeEach(async () => {
  clock = new ManualClock();
  kit = await startTestServer({
    plugins: [greylistPlugin, ...defaultPlugins()],
    clock,
    users: ['joe'],
    control: { 'tcp.smtp': '127.0.0.1:allow,RELAYCLIENT=""\n:allow\n' },
  });
});
afterEach(() => kit.stop());

/** One SMTP attempt up to RCPT from a given loopback address; returns the RCPT reply. */
async function attempt(from: string, sender: string, recipient: string): Promise<string> {
  const smtp = await kit.dialog({ localAddress: from });
  await smtp.command('HELO client.example.org');
  await smtp.command(`MAIL FROM:<${sender}>`);
  const reply = await smtp.command(`RCPT TO:<${recipient}>`);
  await smtp.close();
  return reply.text;
}

describe('greylisting on rcpt', () => {
  it('defers the first try with 451 and accepts a retry after the delay, from the same /24', async () => {
    await expect(kit.send({ from: 'ann@example.org', to: 'joe@quail.test', localAddress: '127.0.0.5' })).rejects.toMatchObject({ responseCode: 451 });
    await clock.advance(299_000);
    expect(await attempt('127.0.0.5', 'ann@example.org', 'joe@quail.test')).toBe(GREYLISTED);
    await clock.advance(1_000);
    await kit.send({ from: 'ann@example.org', to: 'joe@quail.test', subject: 'after the delay', localAddress: '127.0.0.9' });
    const [message] = await kit.waitForMessages('joe');
    expect(message!.subject).toBe('after the delay');
    // the triplet keeps passing from then on
    await clock.advance(86_400_000);
    expect(await attempt('127.0.0.200', 'ann@example.org', 'joe@quail.test')).toBe('250 ok');
  });

  it('keys on network, sender and recipient: changing any one is a new triplet', async () => {
    expect(await attempt('127.0.0.5', 'ann@example.org', 'joe@quail.test')).toBe(GREYLISTED);
    await clock.advance(300_000);
    expect(await attempt('127.0.1.5', 'ann@example.org', 'joe@quail.test')).toBe(GREYLISTED);
    expect(await attempt('127.0.0.5', 'bob@example.org', 'joe@quail.test')).toBe(GREYLISTED);
    expect(await attempt('127.0.0.5', 'ann@example.org', 'joe-x@quail.test')).toBe(GREYLISTED);
    expect(await attempt('127.0.0.5', 'ANN@example.org', 'Joe@quail.test')).toBe('250 ok');
  });

  it('forgets a triplet whose retry comes after the retry window', async () => {
    expect(await attempt('127.0.0.5', '', 'joe@quail.test')).toBe(GREYLISTED);
    await clock.advance(4 * 3600_000 + 1);
    expect(await attempt('127.0.0.5', '', 'joe@quail.test')).toBe(GREYLISTED);
    await clock.advance(300_000);
    expect(await attempt('127.0.0.5', '', 'joe@quail.test')).toBe('250 ok');
  });

  it('never greylists clients allowed to relay (tcprules RELAYCLIENT)', async () => {
    expect(await attempt('127.0.0.1', 'ann@example.org', 'joe@quail.test')).toBe('250 ok');
  });

  it('keeps its state in a JSON file written atomically', async () => {
    await attempt('127.0.0.5', 'ann@example.org', 'joe@quail.test');
    const dir = join(kit.root, 'greylist');
    expect(await readdir(dir)).toEqual(['triplets.json']);
    const state = JSON.parse(await readFile(join(dir, 'triplets.json'), 'utf8'));
    expect(state).toEqual({ '127.0.0.0/24 ann@example.org joe@quail.test': { firstSeen: clock.now(), lastSeen: clock.now() } });
  });

  it('reads its state back at start: a retry after a restart passes', async () => {
    await attempt('127.0.0.5', 'ann@example.org', 'joe@quail.test');
    const state = await readFile(join(kit.root, 'greylist/triplets.json'), 'utf8');
    await kit.stop();
    kit = await startTestServer({ plugins: [greylistPlugin, ...defaultPlugins()], clock, users: ['joe'], files: { 'greylist/triplets.json': state } });
    await clock.advance(300_000);
    expect(await attempt('127.0.0.5', 'ann@example.org', 'joe@quail.test')).toBe('250 ok');
  });
});

describe('TripletStore', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'quail-greylist-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('treats a corrupt state file as empty, says which file, and replaces it on the next write', async () => {
    const file = join(dir, 'triplets.json');
    const warnings: string[] = [];
    for (const bad of ['{not json', '[]', '{"k":{"firstSeen":"x","lastSeen":1}}', '\u0000'.repeat(10)]) {
      await writeFile(file, bad);
      const store = new TripletStore(file);
      await store.load({ warn: (m: string) => warnings.push(m) } as never);
      expect(store.size).toBe(0);
    }
    expect(warnings).toHaveLength(4);
    expect(warnings.every((w) => w.startsWith(`${file}: `))).toBe(true);
    const store = new TripletStore(file);
    await store.set('k', { firstSeen: 1, lastSeen: 1 });
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual({ k: { firstSeen: 1, lastSeen: 1 } });
  });

  it('serialises concurrent writes and leaves no temporary files', async () => {
    const store = new TripletStore(join(dir, 'triplets.json'));
    await Promise.all(Array.from({ length: 50 }, (_, i) => store.set(`k${i}`, { firstSeen: i, lastSeen: i })));
    expect(await readdir(dir)).toEqual(['triplets.json']);
    expect(Object.keys(JSON.parse(await readFile(join(dir, 'triplets.json'), 'utf8')))).toHaveLength(50);
  });
});

describe('clientNetwork', () => {
  it('is the /24 of IPv4 and the /64 of IPv6', () => {
    expect(clientNetwork('192.0.2.77')).toBe('192.0.2.0/24');
    expect(clientNetwork('2001:db8::1')).toBe('2001:0db8:0000:0000::/64');
    expect(clientNetwork('2001:db8:1:2:3:4:5:6')).toBe('2001:0db8:0001:0002::/64');
    expect(clientNetwork('::1')).toBe('0000:0000:0000:0000::/64');
  });
});
