import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createServer } from '@quail/core';
import { hashPassword } from './passwords.js';
import { customPlugins } from './server.js';

// The preset with json-users instead of vpopmail: joe@example.test reads his mail over POP3.
const root = resolve(process.env.QUAIL_ROOT ?? 'var');
if (!existsSync(join(root, 'users.json'))) {
  await mkdir(join(root, 'control'), { recursive: true });
  const control: Record<string, string> = {
    me: 'mx.example.test',
    rcpthosts: 'example.test',
    virtualdomains: 'example.test:example.test',
    'smtpd.listen': process.env.QUAIL_LISTEN ?? '127.0.0.1:2525',
    'pop3d.listen': process.env.QUAIL_POP3_LISTEN ?? '127.0.0.1:2110',
  };
  for (const [name, value] of Object.entries(control)) await writeFile(join(root, 'control', name), `${value}\n`);
  const password = await hashPassword(process.env.JOE_PASSWORD ?? 'change-me');
  await writeFile(join(root, 'users.json'), `${JSON.stringify({ domains: { 'example.test': { users: { joe: { password } } } } }, null, 2)}\n`, { mode: 0o600 });
}
const server = createServer({ root, plugins: customPlugins() });
await server.start();
console.log(`SMTP and POP3 as in ${join(root, 'control')}/{smtpd,pop3d}.listen; users in ${join(root, 'users.json')}. Ctrl-C stops.`);
process.once('SIGINT', () => void server.stop().then(() => process.exit(0)));
