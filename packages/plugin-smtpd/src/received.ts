/** What goes into the `Received:` line qmail-smtpd writes (reference 2.7). */
export interface ReceivedInfo {
  /** TCPREMOTEHOST, `unknown` when not known. */
  remoteHost?: string;
  remoteIp: string;
  /** HELO/EHLO argument; `undefined` before any HELO. */
  helo?: string;
  /** TCPREMOTEINFO; the auth patches set it to the authenticated user. */
  remoteInfo?: string;
  /** TCPLOCALHOST (`me`, as `tcpserver -l`). */
  localHost: string;
  /** Cipher name when the session is encrypted. */
  tlsCipher?: string;
  authenticated: boolean;
  date: Date;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** qmail's anti-injection rule: anything but letters, digits and `.@%+/=:-` becomes `?`. */
export function safe(text: string): string {
  return SAFE_TEXT.test(text) ? text : text.replace(UNSAFE_CHAR, '?');
}

const SAFE_TEXT = /^[A-Za-z0-9.@%+/=:-]*$/;
const UNSAFE_CHAR = /[^A-Za-z0-9.@%+/=:-]/g;

/** qmail's date: `5 Mar 2024 09:04:01 -0000`, always UTC. */
export function receivedDate(date: Date): string {
  const pad = (v: number) => String(v).padStart(2, '0');
  return `${date.getUTCDate()} ${MONTHS[date.getUTCMonth()]} ${date.getUTCFullYear()} ${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())} -0000`;
}

/**
 * The two-line Received header, LF-terminated. `(HELO x)` appears only when the
 * HELO argument differs from the remote host name; TLS and AUTH show in the
 * protocol word as RFC 3848 names it (ESMTPS, ESMTPA, ESMTPSA), and the cipher as
 * the qmail TLS patch writes it.
 */
export function receivedLine(info: ReceivedInfo): string {
  const host = info.remoteHost ?? 'unknown';
  const helo = info.helo !== undefined && info.helo.toLowerCase() !== host.toLowerCase() ? ` (HELO ${safe(info.helo)})` : '';
  const who = info.remoteInfo !== undefined ? `${safe(info.remoteInfo)}@${safe(info.remoteIp)}` : safe(info.remoteIp);
  let protocol = 'SMTP';
  if (info.tlsCipher !== undefined || info.authenticated) {
    protocol = `ESMTP${info.tlsCipher !== undefined ? 'S' : ''}${info.authenticated ? 'A' : ''}`;
  }
  const cipher = info.tlsCipher !== undefined ? ` (${info.tlsCipher.replace(/[^A-Za-z0-9_.-]/g, '?')} encrypted)` : '';
  return `Received: from ${safe(host)}${helo} (${who})\n  by ${safe(info.localHost)} with ${protocol}${cipher}; ${receivedDate(info.date)}\n`;
}
