/**
 * qmail-remote's report texts (reference 7.2 and 7.4), as one place to build
 * them. The remote host is named by IP address as qmail does; the peer's own
 * reply follows on a new line as `Remote host said: ...`.
 */

/** Bytes of a peer's reply kept for a report (qmail keeps 5000). */
export const MAX_REPLY_TEXT = 5000;

/** Makes a peer's reply safe to keep: CR dropped, NUL shown as `?`, clipped. */
export function cleanReply(reply: string): string {
  const text = reply.replace(/\r/g, '').replace(/\0/g, '?').replace(/\n+$/, '');
  return text.length > MAX_REPLY_TEXT ? text.slice(0, MAX_REPLY_TEXT) : text;
}

/** A name or address learned from DNS or a peer, with bytes outside 33-126 shown as `?`. */
export function printable(value: string): string {
  return value.replace(/[^\x21-\x7e]/g, '?');
}

function said(text: string, reply?: string): string {
  return reply ? `${text}\nRemote host said: ${cleanReply(reply)}` : text;
}

export const Texts = {
  dnsTemporary: () => "Sorry, I couldn't find any host by that name. (#4.1.2)",
  dnsNoSuchHost: (host: string) => `Sorry, I couldn't find any host named ${printable(host)}. (#5.1.2)`,
  dnsNothingUsable: () => "Sorry, I couldn't find a mail exchanger or IP address. (#5.4.4)",
  nullMx: (host: string) => `Sorry, ${printable(host)} does not accept mail: it publishes a null MX (RFC 7505). (#5.1.10)`,
  loopsBack: () =>
    "Sorry. Although I'm listed as a best-preference MX or A for that host,\nit isn't in my control/locals file, so I don't treat it as local. (#5.4.6)",
  noConnection: (detail?: string) => `Sorry, I wasn't able to establish an SMTP connection. (#4.4.1)${detail ? `\n${detail}` : ''}`,
  greetingFailed: (ip: string, reply?: string) => said(`Connected to ${ip} but greeting failed.`, reply),
  nameRejected: (ip: string, reply?: string) => said(`Connected to ${ip} but my name was rejected.`, reply),
  tlsFailed: (ip: string, reason: string) => `Connected to ${ip} but the TLS negotiation failed: ${printable(reason.slice(0, 300))} (#4.7.5)`,
  tlsNotOffered: (ip: string, reply?: string) => said(`Connected to ${ip} but it does not offer STARTTLS, which control/tlsdestinations requires. (#4.7.4)`, reply),
  authRejected: (ip: string, reply?: string) => said(`Connected to ${ip} but my authentication was rejected.`, reply),
  authNotOffered: (ip: string) => `Connected to ${ip} but it does not offer SMTP AUTH, which control/smtproutes gives credentials for. (#4.7.0)`,
  authInClear: (ip: string) => `Not sending the control/smtproutes credentials to ${ip} without TLS. (#4.7.0)`,
  senderRejected: (ip: string, reply?: string) => said(`Connected to ${ip} but sender was rejected.`, reply),
  recipientRejected: (ip: string, reply?: string) => said(`${ip} does not like recipient.`, reply),
  dataRejected: (ip: string, reply?: string) => said(`${ip} failed on DATA command.`, reply),
  bodyRejected: (ip: string, reply?: string) => said(`${ip} failed after I sent the message.`, reply),
  accepted: (ip: string, reply?: string) => said(`${ip} accepted message.`, reply),
  connectionDied: (ip: string, afterDot: boolean) => `Connected to ${ip} but connection died. ${afterDot ? 'Possible duplicate! ' : ''}(#4.4.2)`,
  tooBig: (ip: string, size: number, limit: number) => `Sorry, the message (${size} bytes) is larger than ${ip} accepts (${limit} bytes). (#5.3.4)`,
  badAddress: (address: string) => `Sorry, the address ${printable(address)} cannot be carried over SMTP. (#5.1.3)`,
  badRoute: (reason: string) => `Sorry, control/smtproutes is invalid for this domain: ${reason} (#4.3.5)`,
  badTlsPolicy: (reason: string) => `Sorry, control/tlsdestinations cannot be applied: ${reason} (#4.3.5)`,
  unreadable: () => 'Unable to read message. (#4.3.0)',
  interrupted: () => 'Delivery interrupted because the server is stopping. (#4.3.2)',
} as const;
