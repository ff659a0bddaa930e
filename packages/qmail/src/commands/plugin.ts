import { type Command, UsageError, out, parse } from './command.js';

export const plugin: Command = {
  name: 'plugin',
  summary: 'plugin author tools: `quail plugin new <name> [dir]` scaffolds a plugin package',
  help: `usage: quail plugin new <name> [dir]

Creates a plugin package in dir (default ./quail-plugin-<name>, which must not
exist or be empty): package.json, tsconfig.json, src/index.ts (a plugin made with
definePlugin that taps the rcpt hook), README.md and test/plugin.test.ts, a vitest
test that starts a real server with @quail/testkit and talks SMTP to it.
The name is lower-case letters, digits and single dashes (helo-policy).

Then: cd into it, install (pnpm install), run its test (pnpm test), build
(pnpm build), and list its path in control/plugins. docs/plugins.md walks
through all of it.

examples:
  quail plugin new helo-policy
  quail plugin new greylist ./site-plugins/greylist`,
  async run(argv) {
    const { positionals } = parse(argv, {}, { min: 2, max: 3 });
    const [action, name, dir] = positionals as [string, string, string | undefined];
    if (action !== 'new') throw new UsageError(`unknown plugin action ${JSON.stringify(action)} (only "new")`);
    const { scaffoldPlugin } = await import('@quail/testkit');
    const result = await scaffoldPlugin(dir ?? `quail-plugin-${name}`, name).catch((err: Error) => {
      throw new UsageError(err.message);
    });
    out(`created ${result.packageName} in ${result.dir}:`);
    for (const file of result.files) out(`  ${file}`);
    out(`next: cd ${result.dir} && pnpm install && pnpm test`);
    return 0;
  },
};
