import { join, normalize } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatVpasswdLine, parseVpasswd, type VpasswdEntry } from '@quail/plugin-vpopmail';
import { AssignSyntaxError, DotQmailSyntaxError, hostileLocalPart, parseDotQmail, parseUsersAssign, safeExt, type Instruction } from '@quail/plugin-local';
import { hostileString, hostileText, longLine } from './support/arbitraries.js';
import { scaled } from './support/scale.js';

/** A vpasswd field that cannot carry a separator or a line end. */
const field = (max: number) => fc.string({ maxLength: max }).map((s) => s.replace(/[:\r\n\0]/g, ''));
const userName = fc.stringMatching(/^[a-z0-9_][a-z0-9_.+=-]{0,30}$/);

const vpasswdEntry: fc.Arbitrary<VpasswdEntry> = fc
  .record({
    name: userName,
    passwd: field(40),
    uid: fc.integer({ min: 0, max: 2 ** 31 }),
    gid: fc.integer({ min: 0, max: 2 ** 31 }),
    gecos: field(40),
    dir: field(60),
    quota: fc.oneof(fc.constant('NOQUOTA'), fc.stringMatching(/^\d{1,9}S(,\d{1,6}C)?$/)),
    clear: fc.option(fc.string({ maxLength: 30 }).map((s) => s.replace(/[\r\n\0]/g, '')), { nil: undefined }),
  })
  .map((e) => {
    const { clear, ...rest } = e;
    return clear === undefined ? rest : { ...rest, clear };
  });

describe('vpasswd (plugin-vpopmail parseVpasswd / formatVpasswdLine)', () => {
  it('parsing any text never throws, keeps every line, and names each skipped line', () => {
    fc.assert(
      fc.property(fc.oneof(hostileText(12), fc.array(vpasswdEntry).map((es) => es.map((e) => formatVpasswdLine(e, true)).join('\n'))), (text) => {
        const parsed = parseVpasswd(text, 'domains/example.com/vpasswd');
        const raw = text.split('\n');
        if (raw[raw.length - 1] === '') raw.pop();
        expect(parsed.lines.map((l) => l.raw)).toEqual(raw);
        for (const w of parsed.warnings) expect(w).toMatch(/^domains\/example\.com\/vpasswd:\d+: .+; line skipped$/);
        for (const [name, user] of parsed.users) {
          expect(name).toBe(user.name);
          // a user name is always one directory inside the domain directory
          expect(name).not.toMatch(/[/\0\r\n]/);
          expect(name.startsWith('.')).toBe(false);
        }
      }),
      { numRuns: scaled(2000) },
    );
  });

  it('format then parse returns the same entry (with and without the clear-text field)', () => {
    fc.assert(
      fc.property(vpasswdEntry, fc.boolean(), fc.constantFrom('\n', '\r\n'), (entry, keepClear, eol) => {
        const parsed = parseVpasswd(formatVpasswdLine(entry, keepClear) + eol, 'vpasswd');
        expect(parsed.warnings).toEqual([]);
        const expected = { ...entry };
        if (!keepClear) delete expected.clear;
        expect(parsed.users.get(entry.name)).toEqual(expected);
      }),
      { numRuns: scaled(2000) },
    );
  });

  it('a 10 MB line is skipped with a warning, the other users stay readable', () => {
    const text = `joe:x:1:0:Joe:/d/joe:NOQUOTA\n${longLine(10 * 1024 * 1024)}\namy:x:1:0:Amy:/d/amy:NOQUOTA\n`;
    const parsed = parseVpasswd(text, 'vpasswd');
    expect([...parsed.users.keys()]).toEqual(['joe', 'amy']);
    expect(parsed.warnings).toHaveLength(1);
    expect(parsed.warnings[0]).toMatch(/^vpasswd:2: /);
  });
});

/** An instruction without its line number (Omit on each member of the union). */
type BareInstruction = Instruction extends infer I ? (I extends unknown ? Omit<I, 'line'> : never) : never;

/** Renders instructions as dot-qmail lines. */
function dotQmailText(instructions: BareInstruction[]): string {
  return instructions
    .map((i) => {
      switch (i.kind) {
        case 'program':
          return `|${i.command}`;
        case 'maildir':
        case 'mbox':
          return i.path;
        case 'forward':
          return `&${i.address}`;
      }
    })
    .join('\n');
}

const safeChars = fc.string({ minLength: 1, maxLength: 20 }).map((s) => s.replace(/[\s\0-\x1f\x7f<>()[\]\\,;"]/g, 'x'));
const instruction: fc.Arbitrary<BareInstruction> = fc.oneof(
  safeChars.map((c) => ({ kind: 'program' as const, command: `echo ${c}` })),
  fc.tuple(fc.constantFrom('./', '/'), safeChars).map(([p, s]) => ({ kind: 'maildir' as const, path: `${p}${s.replace(/\//g, '_')}/` })),
  fc.tuple(fc.constantFrom('./', '/'), safeChars).map(([p, s]) => ({ kind: 'mbox' as const, path: `${p}${s.replace(/\//g, '_')}x` })),
  fc.tuple(safeChars, safeChars).map(([u, h]) => ({ kind: 'forward' as const, address: `${u.replace(/^[#|./+&]/, 'u')}@${h}` })),
);

describe('dot-qmail (plugin-local parseDotQmail)', () => {
  it('any text: parsed or refused with DotQmailSyntaxError naming a line; no path or address carries a line end or NUL', () => {
    fc.assert(
      fc.property(hostileText(10), (text) => {
        const lineCount = text.split('\n').length;
        try {
          const { instructions } = parseDotQmail(text);
          let previous = 0;
          for (const i of instructions) {
            expect(i.line).toBeGreaterThan(previous);
            expect(i.line).toBeLessThanOrEqual(lineCount);
            previous = i.line;
            if (i.kind === 'maildir' || i.kind === 'mbox') expect(i.path).not.toMatch(/[\0\r\n]/);
            if (i.kind === 'forward') expect(i.address).toMatch(/^[^\s\0-\x1f\x7f]+$/);
            if (i.kind === 'program') expect(i.command).not.toMatch(/[\0\n]/);
          }
        } catch (err) {
          expect(err).toBeInstanceOf(DotQmailSyntaxError);
          expect((err as DotQmailSyntaxError).line).toBeGreaterThanOrEqual(1);
          expect((err as DotQmailSyntaxError).line).toBeLessThanOrEqual(lineCount);
        }
      }),
      { numRuns: scaled(3000) },
    );
  });

  it('instructions written out and parsed again come back the same, comments and blank lines ignored', () => {
    fc.assert(
      fc.property(fc.array(instruction, { minLength: 1, maxLength: 12 }), fc.boolean(), (list, comments) => {
        const text = dotQmailText(list);
        const withNoise = comments ? text.replace(/\n/g, '\n# note\n\n') : text;
        const parsed = parseDotQmail(`${withNoise}\n`);
        expect(parsed.instructions.map(({ line: _line, ...rest }) => rest)).toEqual(list);
      }),
      { numRuns: scaled(1000) },
    );
  });
});

describe('users/assign (plugin-local parseUsersAssign)', () => {
  it('any text: parsed or refused with AssignSyntaxError naming file and line; homes are absolute', () => {
    fc.assert(
      fc.property(fc.oneof(hostileText(6), hostileString(20).map((s) => `=${s}:`)), (text) => {
        try {
          for (const a of parseUsersAssign(text)) {
            expect(a.home.startsWith('/')).toBe(true);
            expect(Number.isInteger(a.uid) && Number.isInteger(a.gid)).toBe(true);
          }
        } catch (err) {
          expect(err).toBeInstanceOf(AssignSyntaxError);
          expect((err as Error).message).toMatch(/^users\/assign:\d+: /);
        }
      }),
      { numRuns: scaled(2000) },
    );
  });
});

describe('local parts (plugin-local hostileLocalPart, safeExt)', () => {
  it('a local part that is accepted always names a file inside the home directory', () => {
    fc.assert(
      fc.property(fc.oneof(hostileString(8), fc.string()), (local) => {
        if (hostileLocalPart(local) !== undefined) return;
        const home = '/home/alias';
        const file = join(home, `.qmail-${safeExt(local)}`);
        expect(normalize(file).startsWith(`${home}/.qmail-`)).toBe(true);
        expect(file.slice(home.length + 1)).not.toContain('/');
        expect(file).not.toMatch(/[\0\r\n]/);
      }),
      { numRuns: scaled(5000) },
    );
  });
});
