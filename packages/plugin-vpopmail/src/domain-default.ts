import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { quoted } from './errors.js';

/** What a domain's `.qmail-default` says to do with mail for users that do not exist (reference 9.6). */
export type DefaultAction =
  | { kind: 'bounce' }
  | { kind: 'delete' }
  | { kind: 'forward'; address: string }
  /** A catch-all user directory: its `.qmail` if any, else its `Maildir/`. */
  | { kind: 'directory'; path: string }
  | { kind: 'maildir'; path: string }
  /** A vdelivermail line that vdelivermail itself would refuse (exit 111). */
  | { kind: 'invalid'; reason: string }
  /** Not a vdelivermail line: an ordinary dot-qmail file for qmail-local's rules. */
  | { kind: 'dot-qmail' }
  /** No `.qmail-default`: nothing takes unknown users. */
  | { kind: 'none' };

export const QMAIL_DEFAULT = '.qmail-default';

/** The line quail writes for a new domain, as vadddomain does (without vpopmail's bin path). */
export const BOUNCE_LINE = "| vdelivermail '' bounce-no-mailbox";

/** Splits a command line as /bin/sh would for plain words, '' and "" quoting and backslashes. */
export function shellWords(command: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  for (let i = 0; i < command.length; i++) {
    const c = command[i]!;
    if (c === ' ' || c === '\t') {
      if (word !== undefined) words.push(word), (word = undefined);
    } else if (c === "'") {
      const end = command.indexOf("'", i + 1);
      word = (word ?? '') + command.slice(i + 1, end < 0 ? command.length : end);
      i = end < 0 ? command.length : end;
    } else if (c === '"') {
      let j = i + 1;
      let text = '';
      for (; j < command.length && command[j] !== '"'; j++) text += command[j] === '\\' && j + 1 < command.length ? command[++j] : command[j];
      word = (word ?? '') + text;
      i = j;
    } else if (c === '\\' && i + 1 < command.length) {
      word = (word ?? '') + command[++i];
    } else {
      word = (word ?? '') + c;
    }
  }
  if (word !== undefined) words.push(word);
  return words;
}

/** Reads what a dot-qmail text says, as far as vdelivermail is concerned. */
export function parseDefaultAction(text: string): DefaultAction {
  const lines = text.split('\n').map((l) => l.replace(/\r$/, '')).filter((l) => l.trim() !== '' && !l.startsWith('#'));
  const first = lines[0];
  if (lines.length !== 1 || !first!.startsWith('|')) return { kind: 'dot-qmail' };
  const words = shellWords(first!.slice(1));
  if (words.length === 0 || words[0]!.split('/').pop() !== 'vdelivermail') return { kind: 'dot-qmail' };
  if (words.length !== 3) return { kind: 'invalid', reason: 'vdelivermail: invalid syntax in .qmail-default file' };
  const instruction = words[2]!;
  if (instruction === 'bounce-no-mailbox') return { kind: 'bounce' };
  if (instruction === 'delete') return { kind: 'delete' };
  if (instruction.startsWith('/')) {
    return /\/Maildir\/?$/.test(instruction) ? { kind: 'maildir', path: instruction } : { kind: 'directory', path: instruction };
  }
  if (/^[^\s@]+@[^\s@]+$/.test(instruction)) return { kind: 'forward', address: instruction };
  return { kind: 'invalid', reason: `vdelivermail: cannot use ${quoted(instruction.slice(0, 80))} in .qmail-default` };
}

export async function readDefaultAction(domainDir: string): Promise<DefaultAction> {
  try {
    return parseDefaultAction(await readFile(join(domainDir, QMAIL_DEFAULT), 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'none' };
    throw err;
  }
}
