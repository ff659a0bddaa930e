import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { tempRoot } from '@quail/core/testing';

const run = promisify(execFile);
const packageDir = fileURLToPath(new URL('..', import.meta.url));
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');

/**
 * Runs in a separate Node process on the compiled package (dist/), the way
 * production runs it: an account made with VpopmailAdmin (hashed by the shared
 * worker pool), then a `$6$` login through a server with the plugin.
 * Warnings go to stderr (the plugin would warn there had its workers not
 * started). It never closes the shared pool: the process must end on its own.
 * The child runs with --input-type=module, a flag its worker threads inherit.
 */
const CHILD = `
const root = process.argv[1];
const { createServer, Tokens } = await import('@quail/core');
const { default: maildir } = await import('@quail/plugin-maildir');
const { default: vpopmail, VpopmailAdmin, sharedPasswordHasher } = await import('@quail/plugin-vpopmail');
const admin = new VpopmailAdmin(root);
await admin.addDomain('example.com', 'pm');
await admin.addUser('joe@example.com', 'contraseña');
const { passwd } = await admin.userInfo('joe@example.com');
const server = createServer({ root, plugins: [vpopmail, maildir], log: { level: 'warn', write: (line) => process.stderr.write(line) } });
await server.start();
const auth = server.resolve(Tokens.Authenticator);
const login = (password) => auth.authenticate({ mechanism: 'USER', service: 'pop3', username: 'joe@example.com', password });
const good = await login('contraseña');
const bad = await login('contrasena');
await server.stop();
process.stdout.write(JSON.stringify({ passwd, good: good.ok && good.user.address, bad, adminHasher: sharedPasswordHasher().mode }));
`;

let root: string;
let cleanup: () => Promise<void>;
afterEach(async () => cleanup?.());

describe('the built package (dist/) outside vitest', () => {
  beforeAll(async () => {
    // The test is about the compiled code, so compile the current sources first.
    await run(process.execPath, [tsc, '-p', packageDir]);
  }, 120_000);

  it('hashes and checks $6$ passwords on worker threads, and the process exits by itself', async () => {
    ({ root, cleanup } = await tempRoot({ me: 'mx.example.com\n' }));
    // Bare @quail/* specifiers resolve from the package directory to the built packages.
    const child = await run(process.execPath, ['--input-type=module', '-e', CHILD, root], { cwd: packageDir, timeout: 20_000 });
    const result = JSON.parse(child.stdout) as { passwd: string; good: string | false; bad: unknown; adminHasher: string };
    expect(result.passwd).toMatch(/^\$6\$[./0-9A-Za-z]{16}\$[./0-9A-Za-z]{86}$/);
    expect(result.good).toBe('joe@example.com');
    expect(result.bad).toEqual({ ok: false, reason: 'bad-credentials' });
    expect(result.adminHasher).toBe('workers');
    expect(child.stderr).toBe('');
  });
});
