/** One instruction of a dot-qmail file. */
export type Instruction =
  | { kind: 'program'; command: string; line: number }
  | { kind: 'maildir'; path: string; line: number }
  | { kind: 'mbox'; path: string; line: number }
  | { kind: 'forward'; address: string; line: number };

export interface DotQmailContents {
  instructions: Instruction[];
  /** `+list`: the file may only forward (like the user-execute bit). */
  forwardOnly: boolean;
}

/** A line that can't be carried out; the delivery is deferred and file:line logged. */
export class DotQmailSyntaxError extends Error {
  constructor(
    readonly line: number,
    readonly reason: string,
  ) {
    super(`line ${line}: ${reason}`);
    this.name = 'DotQmailSyntaxError';
  }
}

/** A forward address must be bare `user@host`: no spaces, brackets, comments or control bytes. */
const BARE_ADDRESS = /^[^\s<>()[\]\\,;"\0-\x1f\x7f]+$/;

/**
 * Reads dot-qmail lines (reference 5.3): `#` comment, `|` program, `/` or `.`
 * ending in `/` maildir, other `/` or `.` mbox, `&` or anything else forward.
 * Trailing spaces and tabs are removed; a blank first line is an error.
 */
export function parseDotQmail(text: string): DotQmailContents {
  const instructions: Instruction[] = [];
  let forwardOnly = false;
  const lines = text.split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  lines.forEach((raw, i) => {
    const line = i + 1;
    const s = raw.replace(/[ \t]+$/, '');
    if (s.includes('\0')) throw new DotQmailSyntaxError(line, 'line contains NUL');
    if (s === '') {
      if (i === 0) throw new DotQmailSyntaxError(line, 'first line of .qmail file is blank');
      return;
    }
    switch (s[0]) {
      case '#':
        return;
      case '|': {
        const command = s.slice(1);
        if (command.trim() === '') throw new DotQmailSyntaxError(line, 'program line without a command');
        instructions.push({ kind: 'program', command, line });
        return;
      }
      case '/':
      case '.':
        if (s.includes('\r')) throw new DotQmailSyntaxError(line, 'file name contains CR');
        instructions.push(s.endsWith('/') ? { kind: 'maildir', path: s, line } : { kind: 'mbox', path: s, line });
        return;
      case '+':
        if (s === '+list') {
          forwardOnly = true;
          return;
        }
        throw new DotQmailSyntaxError(line, `unknown flag line ${JSON.stringify(s)}`);
      default: {
        const address = s[0] === '&' ? s.slice(1) : s;
        if (!BARE_ADDRESS.test(address)) throw new DotQmailSyntaxError(line, `forward address must be a bare user@host: ${JSON.stringify(address)}`);
        instructions.push({ kind: 'forward', address, line });
      }
    }
  });
  return { instructions, forwardOnly };
}
