import { describe, expect, it } from 'vitest';
import { ManualClock, createLogger, formatPretty } from '@quail/core';

describe('logger', () => {
  it('writes readable lines with the plugin name', () => {
    const lines: string[] = [];
    const log = createLogger({ write: (l) => lines.push(l) }).child({ plugin: 'queue' });
    log.info({ id: 7 }, 'new msg 7');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z info queue: new msg 7 id=7\n$/);
  });

  it('writes JSON on request', () => {
    const lines: string[] = [];
    createLogger({ format: 'json', write: (l) => lines.push(l) }).warn('disk nearly full');
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 40, msg: 'disk nearly full' });
  });

  it('keeps a record on one line whatever its text carries (CR, LF, NUL, U+2028)', () => {
    const line = formatPretty({ level: 30, time: 0, plugin: 'smtpd', msg: 'login bob\r\n2026 info forged', user: 'a\u2028b\u0000' });
    expect(line).toBe('1970-01-01T00:00:00.000Z info smtpd: login bob\\r\\n2026 info forged user="a\\u2028b\\u0000"\n');
    expect(line.split(/[\n\r\u2028\u2029]/)).toHaveLength(2);
  });

  it('formats an error by its message', () => {
    expect(formatPretty({ level: 50, time: 0, msg: 'failed', err: { message: 'boom', stack: '...' } })).toBe(
      '1970-01-01T00:00:00.000Z error failed err="boom"\n',
    );
  });
});

describe('ManualClock', () => {
  it('fires timers in time order only when advanced', async () => {
    const clock = new ManualClock(1000);
    const fired: string[] = [];
    clock.setTimeout(() => fired.push('b'), 200);
    clock.setTimeout(() => fired.push('a'), 100);
    const c = clock.setTimeout(() => fired.push('cancelled'), 150);
    clock.clearTimeout(c);
    await clock.advance(99);
    expect(fired).toEqual([]);
    await clock.advance(101);
    expect(fired).toEqual(['a', 'b']);
    expect(clock.now()).toBe(1200);
    expect(clock.pending).toBe(0);
  });

  it('runs timers set by timers within the same advance', async () => {
    const clock = new ManualClock(0);
    const at: number[] = [];
    clock.setTimeout(() => {
      at.push(clock.now());
      clock.setTimeout(() => at.push(clock.now()), 50);
    }, 10);
    await clock.advance(100);
    expect(at).toEqual([10, 60]);
  });
});
