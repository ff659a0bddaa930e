/** Characters of an unquoted local part (RFC 5321 dot-string). */
const ATOM = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~\x80-\uffff-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~\x80-\uffff-]+)*$/;

/** True when an envelope address can be put inside `<...>` on an SMTP command line. */
export function isSendable(address: string): boolean {
  return address.length <= 1000 && !/[\x00-\x1f\x7f<>]/.test(address);
}

/**
 * The address as it goes inside `<...>`: the local part quoted when it is not a
 * plain dot-string (qmail-remote quotes it the same way), the domain unchanged.
 */
export function smtpPath(address: string): string {
  if (address === '') return '';
  const at = address.lastIndexOf('@');
  const local = at < 0 ? address : address.slice(0, at);
  const domain = at < 0 ? '' : address.slice(at);
  if (ATOM.test(local) || /^"([^"\\]|\\.)*"$/.test(local)) return address;
  return `"${local.replace(/(["\\])/g, '\\$1')}"${domain}`;
}

/** The domain an address is delivered to: after the last `@`, lower-cased. */
export function domainOf(address: string): string {
  const at = address.lastIndexOf('@');
  return at < 0 ? '' : address.slice(at + 1).toLowerCase();
}
