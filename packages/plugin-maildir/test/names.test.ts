import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '@quail/core';
import { CrlfTransform, escapeHostName, normaliseFlags, parseFileName, UniqueNames } from '@quail/plugin-maildir';

describe('unique names', () => {
  it('follow the modern time.M<usec>P<pid>Q<n>R<random>.host form', () => {
    const clock = new ManualClock(Date.UTC(2024, 2, 5, 9, 4, 1, 250));
    const names = new UniqueNames({ hostname: 'mx.example.com', clock });
    const { base, time } = names.next();
    expect(base).toMatch(new RegExp(`^1709629441\\.M250\\d{3}P${process.pid}Q\\d+R[0-9a-f]{8}\\.mx\\.example\\.com$`));
    expect(time.getTime()).toBe(clock.now());
  });

  it('are different for every delivery, even at the same instant', () => {
    const names = new UniqueNames({ hostname: 'h', clock: new ManualClock() });
    const seen = new Set(Array.from({ length: 1000 }, () => names.next().base));
    expect(seen.size).toBe(1000);
  });

  it('escape / and : (and the size separator ,) in the host name', () => {
    expect(escapeHostName('a/b:c,d')).toBe('a\\057b\\072c\\054d');
    const base = new UniqueNames({ hostname: '../evil:host/x' }).next().base;
    expect(base).not.toMatch(/[/:]/);
    expect(base.startsWith('.')).toBe(false);
    expect(base.endsWith('..\\057evil\\072host\\057x')).toBe(true);
  });
});

describe('file names', () => {
  it('give uid, sizes, flags and time without opening the file', () => {
    const p = parseFileName('1709629441.M123456P42Q1R00ff00ff.mx,S=1234,W=1260:2,TS');
    expect(p).toEqual({
      uid: '1709629441.M123456P42Q1R00ff00ff.mx,S=1234,W=1260',
      info: '2,TS',
      flags: 'ST',
      size: 1234,
      crlfSize: 1260,
      time: new Date(1709629441123),
    });
  });

  it('read names written by qmail and vpopmail', () => {
    expect(parseFileName('1709629441.4242.mx.example.com')).toMatchObject({ uid: '1709629441.4242.mx.example.com', flags: '', time: new Date(1709629441000) });
    expect(parseFileName('1709629441.4242.mx.example.com')).not.toHaveProperty('size');
    expect(parseFileName('1709629441.4242.mx,S=999:2,S')).toMatchObject({ size: 999, flags: 'S' });
    expect(parseFileName('1709629441.4242.mx,S=999')).not.toHaveProperty('crlfSize');
  });

  it('ignore names that only look like sizes and experimental info', () => {
    expect(parseFileName('garbage')).toEqual({ uid: 'garbage', flags: '', info: '' });
    expect(parseFileName('1.2.h,S=12x')).not.toHaveProperty('size');
    expect(parseFileName('1.2.h:1,S').flags).toBe('');
  });

  it('sort and deduplicate flags', () => {
    expect(normaliseFlags('TSRSa1,')).toBe('RSTa');
  });
});

describe('CrlfTransform', () => {
  it('converts bare LF to CRLF across chunk edges and keeps CRLF', async () => {
    const parts = ['a\r', '\nb\n', '\n', 'c'].map((s) => Buffer.from(s));
    const out: Buffer[] = [];
    for await (const chunk of Readable.from(parts).pipe(new CrlfTransform())) out.push(chunk as Buffer);
    expect(Buffer.concat(out).toString()).toBe('a\r\nb\r\n\r\nc');
  });
});
