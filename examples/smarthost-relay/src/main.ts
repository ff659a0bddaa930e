import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createServer } from '@quail/core';
import { smtpdListeners } from '@quail/plugin-smtpd';
import { prepareRelayRoot, relayPlugins } from './relay.js';

// A relay for the LAN 192.168.1.0/24 and for logged-in users, sending everything to SMARTHOST.
const root = resolve(process.env.QUAIL_ROOT ?? 'var');
if (!existsSync(join(root, 'control', 'smtproutes'))) {
  await prepareRelayRoot(root, {
    me: 'relay.lan.example',
    listen: process.env.QUAIL_LISTEN ?? '127.0.0.1:2525',
    lan: ['192.168.1.', '127.'],
    smarthost: process.env.SMARTHOST ?? 'smtp.isp.example:587',
    loginDomain: 'lan.example',
    users: { joe: process.env.RELAY_PASSWORD ?? 'change-me' },
  });
}
const server = createServer({ root, plugins: relayPlugins() });
await server.start();
console.log(`relay on 127.0.0.1:${smtpdListeners(server)[0]!.port}; routes in ${join(root, 'control/smtproutes')}. Ctrl-C stops.`);
process.on('SIGHUP', () => void server.reload());
process.once('SIGINT', () => void server.stop().then(() => process.exit(0)));
