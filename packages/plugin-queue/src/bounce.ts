import { qmailDate } from './format.js';

/** The envelope sender qmail gives double bounces; a failure of such a message is a triple bounce. */
export const DOUBLE_BOUNCE_SENDER = '#@[]';

export interface BounceFailure {
  /** The recipient as the bounce names it (virtualdomains prefix removed). */
  address: string;
  text: string;
}

export interface BounceControls {
  bouncefrom: string;
  bouncehost: string;
  doublebounceto: string;
  doublebouncehost: string;
}

export type BouncePlan =
  | { kind: 'single'; sender: string; recipient: string; to: string }
  | { kind: 'double'; sender: string; recipient: string; to: string }
  | { kind: 'discard'; reason: string };

/** Who a bounce for a message from `sender` goes to: the sender, the postmaster (double) or nobody (triple). */
export function planBounce(sender: string, controls: BounceControls): BouncePlan {
  if (sender === DOUBLE_BOUNCE_SENDER) return { kind: 'discard', reason: 'triple bounce' };
  if (sender !== '') return { kind: 'single', sender: '', recipient: sender, to: sender };
  if (controls.doublebounceto === '') return { kind: 'discard', reason: 'double bounce with an empty doublebounceto' };
  const to = `${controls.doublebounceto}@${controls.doublebouncehost}`;
  return { kind: 'double', sender: DOUBLE_BOUNCE_SENDER, recipient: to, to };
}

/** A local part as it may appear in a From: header; quoted when it is not a dot-atom. */
function quoteLocal(local: string): string {
  if (/^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+(\.[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+)*$/.test(local)) return local;
  return `"${local.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

/** One recipient paragraph: `<addr>:`, the report LF-terminated with empty lines turned into `/`, then an empty line. */
export function recipientParagraph(failure: BounceFailure): string {
  let text = failure.text.endsWith('\n') ? failure.text : `${failure.text}\n`;
  text = text
    .split('\n')
    .slice(0, -1)
    .map((line) => (line === '' ? '/' : line))
    .join('\n');
  return `<${failure.address.replace(/\n/g, '_')}>:\n${text}\n\n`;
}

/**
 * The head of a bounce in qmail's QSBMF format, everything up to and including
 * the `Return-Path:` line; the original message follows it unchanged.
 */
export function bounceHead(plan: Exclude<BouncePlan, { kind: 'discard' }>, originalSender: string, failures: BounceFailure[], controls: BounceControls, nowMs: number): string {
  const lines = [
    `Date: ${qmailDate(nowMs)}`,
    `From: ${quoteLocal(controls.bouncefrom)}@${controls.bouncehost}`,
    `To: ${plan.to}`,
    'Subject: failure notice',
    '',
    `Hi. This is the qmail-send program at ${controls.bouncehost}.`,
  ];
  if (plan.kind === 'single') {
    lines.push("I'm afraid I wasn't able to deliver your message to the following addresses.");
    lines.push("This is a permanent error; I've given up. Sorry it didn't work out.");
  } else {
    lines.push('I tried to deliver a bounce message to this address, but the bounce bounced!');
  }
  let head = `${lines.join('\n')}\n\n`;
  for (const f of failures) head += recipientParagraph(f);
  head += plan.kind === 'single' ? '--- Below this line is a copy of the message.\n\n' : '--- Below this line is the original bounce.\n\n';
  head += `Return-Path: <${originalSender}>\n`;
  return head;
}
