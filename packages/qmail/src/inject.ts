import { QuailError, ErrorCodes } from '@quail/core';

/** Where recipients come from: qmail-inject's -a (arguments), -h (header), -A (arguments, else header), -H (both). */
export type RecipientSource = 'args' | 'header' | 'args-else-header' | 'both';

/** The defaults qmail-inject fills in, from control files and the environment. */
export interface InjectDefaults {
  /** Local part of a generated From: (QMAILUSER, MAILUSER, USER, LOGNAME). */
  user: string;
  /** Host of a generated From: (QMAILHOST, MAILHOST, else defaulthost). */
  host: string;
  /** Name in a generated From: (QMAILNAME, MAILNAME, NAME). */
  name?: string;
  /** Appended to header addresses without a host. */
  defaulthost: string;
  /** Appended (with a dot) to host names without a dot. */
  defaultdomain: string;
  /** Replaces a trailing `+` of a host name. */
  plusdomain: string;
  /** Host part of a generated Message-ID. */
  idhost: string;
  /** Envelope sender from QMAILSUSER@QMAILSHOST, when set. */
  envelopeSender?: string;
  /** QMAILINJECT letters: c (comment-style From), s (ignore Return-Path), f (delete From), i (delete Message-ID). */
  flags?: string;
  now: Date;
  pid: number;
}

export interface InjectRequest {
  /** The message as given (CRLF or LF). */
  input: Buffer;
  recipients: string[];
  source: RecipientSource;
  /** -f: the envelope sender ('' is the null sender). */
  sender?: string;
}

export interface FixedMessage {
  /** Header-fixed message with bare LF line endings, ready for the queue. */
  message: Buffer;
  sender: string;
  recipients: string[];
}

interface Field {
  name: string;
  /** The whole field as written, folded lines included, without the final LF. */
  text: string;
}

const ADDRESS_FIELDS = new Set(['from', 'sender', 'reply-to', 'to', 'cc', 'bcc', 'mail-followup-to', 'mail-reply-to', 'errors-to', 'return-receipt-to']);
const DROPPED = new Set(['bcc', 'return-path', 'content-length']);

/**
 * qmail-inject's header processing (qmail-header(5)): qualifies addresses,
 * deletes Bcc/Return-Path/Content-Length, adds From, Date and Message-ID when
 * missing (their Resent- forms in resent mode), adds `Cc: recipient list not shown: ;`
 * when there is no To/Cc, and works out the envelope.
 */
export function fixMessage(request: InjectRequest, d: InjectDefaults): FixedMessage {
  const text = request.input.toString('latin1').replace(/\r\n/g, '\n');
  const { fields, body } = splitHeader(text);
  const flags = d.flags ?? '';
  const resent = fields.some((f) => f.name.startsWith('resent-'));
  const prefix = resent ? 'resent-' : '';
  const q = (addr: string) => qualify(addr, d);

  let returnPath: string | undefined;
  const headerRecipients: string[] = [];
  const kept: string[] = [];
  for (const field of fields) {
    const bare = field.name.replace(/^resent-/, '');
    const isAddress = ADDRESS_FIELDS.has(bare) && (field.name.startsWith('resent-') ? resent : true);
    let out = field.text;
    if (isAddress) out = rewriteAddressField(field.text, q);
    if (field.name === 'return-path') returnPath = addressesOf(valueOf(field.text))[0];
    if (['to', 'cc', 'bcc'].some((n) => field.name === prefix + n)) headerRecipients.push(...addressesOf(valueOf(out)));
    if (DROPPED.has(field.name) || (resent && field.name === 'resent-bcc')) continue;
    if (flags.includes('f') && field.name === 'from') continue;
    if (flags.includes('i') && field.name === 'message-id') continue;
    kept.push(out);
  }
  const has = (name: string) => fields.some((f) => f.name === name) && !(name === 'from' && flags.includes('f')) && !(name === 'message-id' && flags.includes('i'));

  const added: string[] = [];
  if (!has(`${prefix}date`)) added.push(`${resent ? 'Resent-Date' : 'Date'}: ${qmailDate(d.now)}`);
  if (!has(`${prefix}message-id`)) added.push(`${resent ? 'Resent-Message-ID' : 'Message-ID'}: <${messageIdStamp(d.now)}.${d.pid}.qmail@${d.idhost}>`);
  if (!has(`${prefix}from`)) added.push(`${resent ? 'Resent-From' : 'From'}: ${fromLine(d)}`);
  if (!has(`${prefix}to`) && !has(`${prefix}cc`)) added.push(`${resent ? 'Resent-Cc' : 'Cc'}: recipient list not shown: ;`);

  const args = request.recipients.map(q);
  let recipients: string[];
  switch (request.source) {
    case 'args':
      recipients = args;
      break;
    case 'header':
      recipients = headerRecipients;
      break;
    case 'both':
      recipients = [...args, ...headerRecipients];
      break;
    case 'args-else-header':
      recipients = args.length > 0 ? args : headerRecipients;
      break;
  }
  recipients = [...new Set(recipients.filter((r) => r !== ''))];
  if (recipients.length === 0) throw new QuailError(ErrorCodes.INVALID, 'no recipients');
  for (const r of recipients) checkAddress(r, 'recipient');

  let sender: string;
  if (request.sender !== undefined) sender = request.sender === '' ? '' : q(request.sender);
  else if (returnPath !== undefined && !flags.includes('s')) sender = returnPath === '' ? '' : q(returnPath);
  else sender = d.envelopeSender ?? `${d.user}@${d.host}`;
  if (sender !== '') checkAddress(sender, 'sender');

  const header = [...added, ...kept].map((l) => `${l}\n`).join('');
  return { message: Buffer.from(`${header}\n${body}`, 'latin1'), sender, recipients };
}

function checkAddress(addr: string, what: string): void {
  if (/[\s<>\0]/.test(addr) || addr.length > 998) throw new QuailError(ErrorCodes.INVALID, `bad ${what} address: ${JSON.stringify(addr.slice(0, 80))}`);
}

/** Header fields up to the first empty line (or the first line that is not a field), and the rest. */
function splitHeader(text: string): { fields: Field[]; body: string } {
  const fields: Field[] = [];
  let pos = 0;
  while (pos < text.length) {
    const end = text.indexOf('\n', pos);
    const line = end < 0 ? text.slice(pos) : text.slice(pos, end);
    const next = end < 0 ? text.length : end + 1;
    if (line === '') return { fields, body: text.slice(next) };
    if (/^[ \t]/.test(line) && fields.length > 0) {
      fields[fields.length - 1]!.text += `\n${line}`;
    } else {
      const m = /^([!-9;-~]+)[ \t]*:/.exec(line);
      if (!m) return { fields, body: text.slice(pos) };
      fields.push({ name: m[1]!.toLowerCase(), text: line });
    }
    pos = next;
  }
  return { fields, body: '' };
}

function valueOf(fieldText: string): string {
  return fieldText.slice(fieldText.indexOf(':') + 1);
}

/** qmail-inject's host fixes: no host → defaulthost; no dot → .defaultdomain; trailing + → .plusdomain; source route stripped. */
export function qualify(address: string, d: Pick<InjectDefaults, 'defaulthost' | 'defaultdomain' | 'plusdomain'>): string {
  let addr = address.trim();
  if (addr.startsWith('<') && addr.endsWith('>')) addr = addr.slice(1, -1);
  const route = /^@[^:]*:(.*)$/.exec(addr);
  if (route) addr = route[1]!;
  if (addr === '') return '';
  const at = addr.lastIndexOf('@');
  let local = at < 0 ? addr : addr.slice(0, at);
  let host = at < 0 ? d.defaulthost : addr.slice(at + 1);
  if (host.endsWith('+')) host = `${host.slice(0, -1)}.${d.plusdomain}`;
  else if (!host.includes('.') && !host.startsWith('[')) host = `${host}.${d.defaultdomain}`;
  local = local.trim();
  return `${local}@${host}`;
}

/** Splits an address list at top-level commas, outside quotes, comments and angle brackets. */
function splitList(value: string): string[] {
  const items: string[] = [];
  let depth = 0;
  let quoted = false;
  let angle = false;
  let start = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (quoted) {
      if (c === '\\') i++;
      else if (c === '"') quoted = false;
    } else if (c === '"') quoted = true;
    else if (c === '(') depth++;
    else if (c === ')' && depth > 0) depth--;
    else if (depth === 0 && c === '<') angle = true;
    else if (depth === 0 && c === '>') angle = false;
    else if (depth === 0 && !angle && (c === ',' || c === ';' || c === ':')) {
      items.push(value.slice(start, i));
      items.push(c);
      start = i + 1;
    }
  }
  items.push(value.slice(start));
  return items;
}

/** Rewrites every address of one item of a list (`addr`, `Name <addr>`, `addr (comment)`). */
function rewriteItem(item: string, q: (a: string) => string): string {
  const angle = /<([^<>]*)>/.exec(item);
  if (angle) return item.replace(angle[0], `<${angle[1]!.trim() === '' ? '' : q(angle[1]!)}>`);
  const withoutComments = item.replace(/\([^()]*\)/g, '').trim();
  if (withoutComments === '' || /"/.test(withoutComments) || /\s/.test(withoutComments)) return item;
  const lead = /^\s*/.exec(item)![0];
  return item.replace(withoutComments, q(withoutComments)).replace(/^\s*/, lead);
}

function rewriteAddressField(fieldText: string, q: (a: string) => string): string {
  const colon = fieldText.indexOf(':');
  const name = fieldText.slice(0, colon + 1);
  const parts = splitList(fieldText.slice(colon + 1));
  const out: string[] = [];
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!;
    if (p === ',' || p === ';') out.push(p);
    else if (p === ':') out.push(p);
    else if (parts[i + 1] === ':') out.push(p);
    else out.push(rewriteItem(p, q));
  }
  return name + out.join('');
}

/** The addr-specs of an address list (group names and empty groups skipped). */
export function addressesOf(value: string): string[] {
  const parts = splitList(value);
  const out: string[] = [];
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!;
    if (p === ',' || p === ';' || p === ':' || parts[i + 1] === ':') continue;
    const angle = /<([^<>]*)>/.exec(p);
    const addr = angle ? angle[1]!.trim() : p.replace(/\([^()]*\)/g, '').trim();
    if (angle || (addr !== '' && !/\s|"/.test(addr))) out.push(addr);
  }
  return out;
}

function fromLine(d: InjectDefaults): string {
  const addr = `${d.user}@${d.host}`;
  if (!d.name) return addr;
  if ((d.flags ?? '').includes('c')) return `${addr} (${d.name.replace(/[()\\]/g, '')})`;
  const name = /^[\w !#$%&'*+/=?^`{|}~-]*$/.test(d.name) ? d.name : `"${d.name.replace(/["\\]/g, '\\$&')}"`;
  return `${name} <${addr}>`;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** qmail's date format: `5 Mar 2024 09:04:01 -0000` (UTC). */
export function qmailDate(t: Date): string {
  return `${t.getUTCDate()} ${MONTHS[t.getUTCMonth()]} ${t.getUTCFullYear()} ${pad(t.getUTCHours())}:${pad(t.getUTCMinutes())}:${pad(t.getUTCSeconds())} -0000`;
}

function messageIdStamp(t: Date): string {
  return `${t.getUTCFullYear()}${pad(t.getUTCMonth() + 1)}${pad(t.getUTCDate())}${pad(t.getUTCHours())}${pad(t.getUTCMinutes())}${pad(t.getUTCSeconds())}`;
}
