import { isIP } from 'node:net';
import { control, qmailFiles, type Fail } from '@quail/core';

/** A `host:port` line of pop3d.listen / pop3s.listen. */
export interface ListenAddress {
  host: string;
  port: number;
}

/** Parses `host:port`, `[v6]:port`, `:port` or `port`; a missing host means every IPv4 address. */
export function parseListenLine(text: string): ListenAddress | string {
  let host = '0.0.0.0';
  let port = text;
  const bracket = /^\[([^\]]+)\]:(\d+)$/.exec(text);
  if (bracket) {
    host = bracket[1]!;
    port = bracket[2]!;
    if (isIP(host) !== 6) return `not an IPv6 address: "${host}"`;
  } else if (text.includes(':')) {
    const colon = text.lastIndexOf(':');
    host = text.slice(0, colon) || host;
    port = text.slice(colon + 1);
    if (host.includes(':')) return `write IPv6 addresses in brackets: [${host}]:${port}`;
    if (isIP(host) === 0 && !/^[A-Za-z0-9.-]+$/.test(host)) return `not a host name or address: "${host}"`;
  }
  if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) return `not a port number: "${port}"`;
  return { host, port: Number(port) };
}

function listenFile(description: string, defaults: string[]) {
  return control.list({
    description,
    default: defaults,
    parse(raw: string[], fail: Fail): ListenAddress[] {
      return raw.map((line, i) => {
        const parsed = parseListenLine(line);
        return typeof parsed === 'string' ? fail(i, parsed) : parsed;
      });
    },
  });
}

/** One `control/pop3d.plaintext` entry: an address, a CIDR block, or `*` for everyone. */
export interface PlaintextRule {
  address: string;
  prefix: number;
  family: 'ipv4' | 'ipv6' | 'any';
}

export function parsePlaintextRule(text: string): PlaintextRule | string {
  if (text === '*') return { address: '', prefix: 0, family: 'any' };
  const [address = '', bits, extra] = text.split('/');
  const version = isIP(address);
  if (version === 0 || extra !== undefined) return `not an IP address or CIDR block: "${text}"`;
  const max = version === 4 ? 32 : 128;
  if (bits !== undefined && (!/^\d{1,3}$/.test(bits) || Number(bits) > max)) return `bad prefix length in "${text}"`;
  return { address, prefix: bits === undefined ? max : Number(bits), family: version === 4 ? 'ipv4' : 'ipv6' };
}

export const pop3Control = {
  'pop3d.listen': listenFile('addresses for POP3 with STLS, host:port per line', ['0.0.0.0:110']),
  'pop3s.listen': listenFile('addresses for POP3 over implicit TLS (POP3S), host:port per line', []),
  'servercert.pem': qmailFiles['servercert.pem'],
  timeoutpop3d: control.int({ description: 'seconds a POP3 client may stay idle', default: 600, schema: { minimum: 1 } }),
  'pop3d.plaintext': control.list({
    description: 'client addresses (IP, CIDR, or *) allowed plain-text logins without TLS; loopback always is',
    parse(raw: string[], fail: Fail): PlaintextRule[] {
      return raw.map((line, i) => {
        const parsed = parsePlaintextRule(line);
        return typeof parsed === 'string' ? fail(i, parsed) : parsed;
      });
    },
  }),
  'pop3d.faildelay': control.int({
    description: 'seconds to hold back the answer to a failed POP3 login, times the recent failures from that address (at most 30 s)',
    default: 2,
    schema: { minimum: 0, maximum: 30 },
  }),
};
