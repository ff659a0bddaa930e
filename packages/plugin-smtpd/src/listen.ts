import { isIP } from 'node:net';
import type { Fail } from '@quail/core';

/** One address a listener binds. */
export interface ListenAddress {
  host: string;
  port: number;
}

/**
 * Parses `host:port` lines (`0.0.0.0:25`, `127.0.0.1:2525`, `[::1]:587`, `:25` for
 * every address). Port 0 asks the system for a free port (tests).
 */
export function parseListenLines(lines: readonly string[], fail: Fail): ListenAddress[] {
  const seen = new Set<string>();
  return lines.map((line, index) => {
    const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^\s:[\]]*)):(\d{1,5})$/.exec(line);
    if (!m) fail(index, `expected host:port, got "${line.length > 60 ? `${line.slice(0, 60)}...` : line}"`);
    const host = m[1] ?? (m[2] || '0.0.0.0');
    const port = Number(m[3]);
    if (port > 65535) fail(index, `port ${port} is out of range`);
    if (m[1] !== undefined && isIP(host) !== 6) fail(index, `"${host}" is not an IPv6 address`);
    if (m[2] && isIP(host) === 0 && !/^[A-Za-z0-9.-]+$/.test(host)) fail(index, `"${host}" is not an address or host name`);
    const key = `${host}:${port}`;
    if (port !== 0 && seen.has(key)) fail(index, `${key} is listed twice`);
    seen.add(key);
    return { host, port };
  });
}
