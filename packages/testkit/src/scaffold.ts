import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface ScaffoldOptions {
  /**
   * How the new package depends on `@quail/core` and `@quail/testkit`. Default:
   * `link:<checkout>/packages/...` when this testkit runs from a quail checkout,
   * otherwise `^<testkit version>` from the registry.
   */
  quailDependency?: (pkg: '@quail/core' | '@quail/testkit') => string;
}

export interface ScaffoldResult {
  /** The package directory, absolute. */
  dir: string;
  /** npm package name (`quail-plugin-<name>`). */
  packageName: string;
  /** Files written, relative to `dir`. */
  files: string[];
}

const NAME = /^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$/;

/**
 * Creates a plugin package in `dir` (which must not exist or be empty): package.json,
 * tsconfig.json, src/index.ts (a `rcpt` plugin made with definePlugin), README.md and
 * test/plugin.test.ts, which runs the plugin in a real server with @quail/testkit.
 */
export async function scaffoldPlugin(dir: string, name: string, options: ScaffoldOptions = {}): Promise<ScaffoldResult> {
  if (!NAME.test(name) || name.length > 60) {
    throw new Error(`plugin name ${JSON.stringify(name)}: use lower-case letters, digits and single dashes, starting with a letter (e.g. helo-policy)`);
  }
  const target = resolve(dir);
  if (existsSync(target) && (await readdir(target)).length > 0) throw new Error(`${target} is not empty: pick a new directory for the plugin`);
  const dependency = options.quailDependency ?? defaultDependency;
  const packageName = `quail-plugin-${name}`;
  const files = templates(name, packageName, dependency);
  for (const [path, content] of Object.entries(files)) {
    await mkdir(dirname(join(target, path)), { recursive: true });
    await writeFile(join(target, path), content);
  }
  return { dir: target, packageName, files: Object.keys(files) };
}

/** `link:` to this checkout's packages when the testkit runs from a quail checkout, else the registry version. */
function defaultDependency(pkg: '@quail/core' | '@quail/testkit'): string {
  const own = resolve(dirname(fileURLToPath(import.meta.url)), '..');
  const ownPackage = resolve(own, existsSync(join(own, 'package.json')) ? '.' : '..');
  const manifest = JSON.parse(readFileSync(join(ownPackage, 'package.json'), 'utf8')) as { version: string };
  const sibling = join(dirname(ownPackage), pkg === '@quail/core' ? 'core' : 'testkit');
  const inCheckout = !ownPackage.split(sep).includes('node_modules') && existsSync(join(sibling, 'package.json'));
  return inCheckout ? `link:${sibling}` : `^${manifest.version}`;
}

function templates(name: string, packageName: string, dependency: (pkg: '@quail/core' | '@quail/testkit') => string): Record<string, string> {
  const file = `${name}.refuse`;
  const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;
  return {
    'package.json': json({
      name: packageName,
      version: '0.1.0',
      description: `quail plugin ${name}`,
      type: 'module',
      main: './dist/index.js',
      types: './dist/index.d.ts',
      exports: { '.': { types: './dist/index.d.ts', default: './dist/index.js' } },
      files: ['dist', 'README.md'],
      scripts: { build: 'tsc -p tsconfig.json', test: 'vitest run' },
      dependencies: { '@quail/core': dependency('@quail/core') },
      devDependencies: {
        '@quail/testkit': dependency('@quail/testkit'),
        '@types/node': '^20.19.0',
        typescript: '^5.9.3',
        vitest: '^4.1.12',
      },
    }),
    'tsconfig.json': json({
      compilerOptions: {
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        lib: ['ES2023'],
        types: ['node'],
        strict: true,
        declaration: true,
        sourceMap: true,
        skipLibCheck: true,
        isolatedModules: true,
        verbatimModuleSyntax: true,
        rootDir: 'src',
        outDir: 'dist',
      },
      include: ['src'],
    }),
    '.gitignore': 'node_modules/\ndist/\n',
    'src/index.ts': `import { control, definePlugin, deny } from '@quail/core';

/**
 * ${name}: refuses the recipients listed in control/${file} at RCPT.
 * Replace the rcpt tap with your own policy; docs/plugins.md lists every hook.
 */
export default definePlugin({
  name: '${name}',
  version: '0.1.0',
  control: {
    '${file}': control.list({
      description: 'recipient addresses refused at RCPT, one per line',
      schema: { items: { type: 'string', pattern: '^[^\\\\s@]+@[^\\\\s@]+$' } },
      parse: (raw) => new Set(raw.map((address) => address.toLowerCase())),
    }),
  },
  register(ctx) {
    ctx.hooks.rcpt.tapPromise(ctx.name, async (tx, recipient) => {
      if (!ctx.config['${file}']?.has(recipient.address.toLowerCase())) return undefined;
      ctx.log.info({ ip: tx.connection.remoteAddress, recipient: recipient.address }, 'recipient refused');
      return deny(550, 'sorry, this recipient takes no mail here', '5.7.1');
    });
  },
});
`,
    'test/plugin.test.ts': `import { afterEach, beforeEach, expect, it } from 'vitest';
import { defaultPlugins, startTestServer, type TestServer } from '@quail/testkit';
import plugin from '../src/index.js';

let kit: TestServer;

beforeEach(async () => {
  kit = await startTestServer({
    plugins: [plugin, ...defaultPlugins()],
    control: { '${file}': 'closed@quail.test' },
    users: ['joe'],
  });
});
afterEach(() => kit.stop());

it('refuses a listed recipient with 550', async () => {
  await expect(kit.send({ from: 'ann@example.org', to: 'closed@quail.test' })).rejects.toMatchObject({ responseCode: 550 });
  const smtp = await kit.dialog();
  await smtp.command('HELO client.example.org');
  await smtp.command('MAIL FROM:<ann@example.org>');
  expect((await smtp.command('RCPT TO:<Closed@quail.test>')).text).toBe('550 sorry, this recipient takes no mail here (#5.7.1)');
  await smtp.close();
});

it('lets every other recipient through to its Maildir', async () => {
  await kit.send({ from: 'ann@example.org', to: 'joe@quail.test', subject: 'hello joe' });
  const [message] = await kit.waitForMessages('joe');
  expect(message?.subject).toBe('hello joe');
  expect(message?.deliveredTo).toBe('joe@quail.test');
});
`,
    'README.md': `# ${packageName}

A plugin for quail, the plugin-based MTA. Plugin name: \`${name}\`.

Refuses the recipients listed in \`control/${file}\` (one address per line) at RCPT
with \`550 sorry, this recipient takes no mail here (#5.7.1)\`.

- **Hooks:** \`rcpt\`.
- **Control files:** \`${file}\`.
- **Services:** none provided, none required.

## Use

\`\`\`sh
npm run build      # compiles src/ to dist/
npm test           # runs test/ against a real server on loopback (@quail/testkit)
\`\`\`

Load it by adding the package name (installed where the server can resolve it) or the
path of \`dist/index.js\` (absolute, or relative to the server root) to \`control/plugins\`,
or pass it to \`createServer({ root, plugins: [...] })\`.
`,
  };
}
