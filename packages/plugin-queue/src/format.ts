import type { QueuedMessageInfo, QueueStat } from '@quail/core';

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

const pad = (n: number) => String(n).padStart(2, '0');

function dayMonthYearTime(ms: number): string {
  const d = new Date(ms);
  return `${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
}

/** qmail's date format in Received lines and bounces: `5 Mar 2024 09:04:01 -0000`. */
export function qmailDate(ms: number): string {
  return `${dayMonthYearTime(ms)} -0000`;
}

/** qmail-send's log text: LF becomes `/`; bytes outside 33..126 and `%` become `_`. */
export function safeLogText(text: string): string {
  let out = '';
  for (const ch of text) {
    if (ch === '\n') out += '/';
    else {
      const c = ch.codePointAt(0)!;
      out += c < 33 || c > 126 || ch === '%' ? '_' : ch;
    }
  }
  return out;
}

/** qmail-qread prints unprintable bytes as `_`. */
function printable(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '_');
}

/** A queued recipient as `list()` reports it: `address` is the routed address qmail-qread shows. */
export interface ListedRecipient {
  recipient: string;
  channel: string;
  state: string;
  address?: string;
}

/** One message in qmail-qread's format: a header line, then one line per recipient. */
export function formatQread(message: QueuedMessageInfo): string {
  const bouncing = message.recipients.some((r) => r.state === 'failed');
  let out = `${dayMonthYearTime(message.queuedAt.getTime())} GMT  #${message.id}  ${message.size}  <${printable(message.sender)}> ${bouncing ? ' bouncing' : ''}\n`;
  for (const r of message.recipients as ListedRecipient[]) {
    const done = r.state === 'delivered' || r.state === 'failed';
    out += `${done ? '  done' : ''}\t${r.channel}\t${printable(r.address ?? r.recipient)}\n`;
  }
  return out;
}

/** qmail-qstat's two lines. */
export function formatQstat(stat: QueueStat): string {
  return `messages in queue: ${stat.messages}\nmessages in queue but not yet preprocessed: ${stat.unprocessed}\n`;
}
