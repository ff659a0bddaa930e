import { QuailError, ErrorCodes } from '@quail/core';

export interface ListenAddress {
  host: string;
  port: number;
}

/** Parses `host:port`, `[v6]:port` or a bare port (all addresses). */
export function parseListen(text: string, what: string): ListenAddress {
  const m = /^(?:\[([0-9a-f:.]+)\]|([^:\s]+)):(\d{1,5})$/i.exec(text) ?? /^()()(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port >= 0 && port <= 65535)) throw new QuailError(ErrorCodes.INVALID, `${what}: expected host:port, got ${JSON.stringify(text)}`);
  return { host: m[1] || m[2] || '0.0.0.0', port };
}

export function formatListen(a: ListenAddress): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

/** The listener control files of the preset's SMTP and POP3 plugins. */
export function listenerFiles(l: { smtp: ListenAddress; submission: ListenAddress; pop3: ListenAddress }): Record<string, string> {
  return {
    'smtpd.listen': `${formatListen(l.smtp)}\n`,
    'submission.listen': `${formatListen(l.submission)}\n`,
    'pop3d.listen': `${formatListen(l.pop3)}\n`,
  };
}
