#!/usr/bin/env node
import 'reflect-metadata';
import { exitCodeOf, oneLine, out, type Command } from './commands/command.js';
import { init, qstat, queue, showctl } from './commands/admin.js';
import { ctl, demo, start } from './commands/daemon.js';
import { injectCommand, sendmail } from './commands/inject.js';
import { plugin } from './commands/plugin.js';
import { vpopmailCommands } from './commands/vpopmail.js';

const COMMANDS: Command[] = [init, start, ctl, injectCommand, sendmail, showctl, queue, qstat, ...vpopmailCommands, plugin, demo];

function usage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return `usage: quail <command> [options]   (quail <command> --help for details and examples)

quail is a mail server whose default preset behaves like qmail + vpopmail.

commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n')}

The server root is --root R, else $QUAIL_ROOT, else /var/quail (root) or ./var/quail.

quick start:
  quail demo                     # ./var/quail with example.test, served on 127.0.0.1:2525/2587/2110
`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    const topic = name === 'help' ? COMMANDS.find((c) => c.name === rest[0]) : undefined;
    out(topic ? topic.help : usage());
    return name === undefined ? 100 : 0;
  }
  if (name === '--version') {
    out('quail 0.1.0');
    return 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    process.stderr.write(`quail: unknown command ${JSON.stringify(name)} (quail --help lists them)\n`);
    return 100;
  }
  if (rest.includes('--help')) {
    out(command.help);
    return 0;
  }
  try {
    return await command.run(rest);
  } catch (err) {
    process.stderr.write(`quail ${command.name}: ${oneLine(err)}\n`);
    return exitCodeOf(err);
  }
}

// The command decides when quail is done: a stray handle (a timer, a worker
// thread of a library) must not keep a finished command or a stopped daemon alive.
main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`quail: ${oneLine(err)}\n`);
    process.exit(111);
  },
);
