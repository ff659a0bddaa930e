import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { control, ControlDirectory, ErrorCodes, QuailError, qmailFiles } from '@quail/core';
import { hostileBytes, hostileString, longLine } from './support/arbitraries.js';
import { scaled } from './support/scale.js';

let base: string;
let serial = 0;

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'quail-rel-control-'));
});
afterAll(async () => {
  await rm(base, { recursive: true, force: true });
});

/** A fresh root with control/ holding the given files. */
async function rootWith(files: Record<string, string | Buffer>): Promise<string> {
  const root = join(base, String(serial++));
  await mkdir(join(root, 'control'), { recursive: true });
  for (const [name, content] of Object.entries(files)) await writeFile(join(root, 'control', name), content);
  return root;
}

function directory(root: string): ControlDirectory {
  const dir = new ControlDirectory(root);
  dir.declare('rel', {
    rcpthosts: qmailFiles.rcpthosts,
    databytes: qmailFiles.databytes,
    virtualdomains: qmailFiles.virtualdomains,
    smtpgreeting: qmailFiles.smtpgreeting,
    'rel.lines': control.lines(),
    'rel.text': control.text(),
  });
  return dir;
}

/** The only way a load may fail: QUAIL_E_CONFIG, every problem written `control/FILE:LINE: reason`. */
function expectConfigError(err: unknown): void {
  expect(err).toBeInstanceOf(QuailError);
  expect((err as QuailError).code).toBe(ErrorCodes.CONFIG);
  for (const line of (err as Error).message.split('\n')) expect(line).toMatch(/^control\/[A-Za-z0-9._-]+:\d+: \S/);
}

const FILES = ['me', 'rcpthosts', 'databytes', 'virtualdomains', 'smtpgreeting', 'rel.lines', 'rel.text'] as const;

/** A list entry as a list file keeps it: trimmed, no line break or NUL, not a comment. */
const entry = fc
  .string({ minLength: 1, maxLength: 40 })
  .map((s) => s.replace(/[\r\n\0]/g, 'x').trim())
  .filter((s) => s !== '' && !s.startsWith('#'));

describe('control files (core ControlDirectory) under hostile input', () => {
  it('any bytes in any declared file: the load succeeds or fails with control/FILE:LINE errors only', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...FILES), hostileBytes(512), async (file, content) => {
        const root = await rootWith({ [file]: content });
        try {
          const snapshot = await directory(root).load();
          const value = snapshot.get(file);
          if (typeof value === 'string' && file !== 'rel.text') expect(value).not.toMatch(/[\n\0]/);
          if (Array.isArray(value)) for (const v of value) expect(v).not.toMatch(/[\n\0]/);
        } catch (err) {
          expectConfigError(err);
        }
      }),
      { numRuns: scaled(200) },
    );
  });

  it('list files round-trip: entries come back in order, comments and blank lines skipped, CRLF tolerated', async () => {
    const line = fc.oneof(
      entry.map((text) => ({ text, keep: true })),
      fc.constantFrom('', '   ', '# comment', '#', '\t').map((text) => ({ text, keep: false })),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(line, { maxLength: 30 }), fc.constantFrom('\n', '\r\n'), async (lines, eol) => {
        const root = await rootWith({ 'rel.lines': lines.map((l) => l.text).join(eol) + eol });
        const snapshot = await directory(root).load();
        expect(snapshot.get('rel.lines')).toEqual(lines.filter((l) => l.keep).map((l) => l.text));
      }),
      { numRuns: scaled(150) },
    );
  });

  it('map files round-trip: key lower-cased up to the first colon, the last line of a key wins', async () => {
    const key = entry.map((k) => k.replace(/:/g, '').trim().toLowerCase()).filter((k) => k !== '' && !k.startsWith('#'));
    const value = fc.string({ maxLength: 30 }).map((v) => v.replace(/[\r\n\0]/g, '').trim());
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(key, value), { maxLength: 20 }), async (pairs) => {
        const root = await rootWith({ virtualdomains: pairs.map(([k, v]) => `${k}:${v}\n`).join('') });
        const expected: Record<string, string> = {};
        for (const [k, v] of pairs) expected[k] = v;
        expect((await directory(root).load()).get('virtualdomains')).toEqual(expected);
      }),
      { numRuns: scaled(150) },
    );
  });

  it('int files: every integer round-trips; anything else is refused naming the file and line', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.integer({ min: 0, max: 2 ** 48 }), hostileString(4)), async (value) => {
        const root = await rootWith({ databytes: `# limit\n${String(value)}\n` });
        const isInt = typeof value === 'number' || /^\s*\+?\d{1,15}\s*$/.test(value);
        try {
          const got = (await directory(root).load()).get('databytes');
          expect(isInt).toBe(true);
          expect(got).toBe(Number(String(value).trim()));
        } catch (err) {
          expectConfigError(err);
          if (!isInt || /^\s*-/.test(String(value))) expect((err as Error).message).toMatch(/^control\/databytes:\d+: /m);
        }
      }),
      { numRuns: scaled(200) },
    );
  });

  it('a 10 MB line is refused with the file and line named, not read into memory as a value', async () => {
    const root = await rootWith({ rcpthosts: `example.com\n${longLine(10 * 1024 * 1024)}\n` });
    await expect(directory(root).load()).rejects.toThrow(/^control\/rcpthosts:2: line longer than/);
  });

  it('a NUL byte in a text file is refused with its line', async () => {
    const root = await rootWith({ 'rel.text': 'one\ntwo\nth\0ree\n' });
    await expect(directory(root).load()).rejects.toThrow(/^control\/rel\.text:3: contains a NUL byte/);
  });

  it('declared file names can never leave control/: traversal, separators and NUL are refused at declare time', () => {
    fc.assert(
      fc.property(hostileString(6), (name) => {
        const dir = new ControlDirectory(base);
        try {
          dir.declare('rel', { [name]: control.string() });
          expect(name).toMatch(/^[A-Za-z0-9][A-Za-z0-9._-]*$/);
          expect(join(dir.dir, name).startsWith(`${dir.dir}/`)).toBe(true);
        } catch (err) {
          expect(err).toBeInstanceOf(QuailError);
          expect((err as QuailError).code).toBe(ErrorCodes.PLUGIN_LOAD);
        }
      }),
      { numRuns: scaled(500) },
    );
  });

  it('a control file that is a symbolic link is read (qmail follows links), not silently replaced by the default', async () => {
    const root = await rootWith({});
    const target = join(base, `shared-rcpthosts-${serial++}`);
    await writeFile(target, 'linked.example\n');
    await symlink(target, join(root, 'control', 'rcpthosts'));
    const snapshot = await directory(root).load();
    expect(snapshot.get('rcpthosts')).toEqual(['linked.example']);
  });
});
