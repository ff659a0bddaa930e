import { resolve } from 'node:path';
import { startMinimalServer } from './server.js';

const { server, port, maildir } = await startMinimalServer({ root: resolve(process.env.QUAIL_ROOT ?? 'var'), listen: process.env.QUAIL_LISTEN ?? '127.0.0.1:2525' });
console.log(`SMTP on 127.0.0.1:${port} for example.test; mail is filed in ${maildir}. Ctrl-C stops.`);
process.once('SIGINT', () => void server.stop().then(() => process.exit(0)));
