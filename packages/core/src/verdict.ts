/**
 * Verdicts: what a session hook (connect, helo, auth, mail, rcpt, data, queue)
 * answers. `undefined` means "no opinion, ask the next plugin"; any verdict ends
 * the chain (tapable bail semantics).
 */
export type EnhancedCode = `${2 | 4 | 5}.${number}.${number}`;

export interface AcceptVerdict {
  kind: 'accept';
  code?: number;
  enhanced?: EnhancedCode;
  message?: string;
}
export interface DenyVerdict {
  kind: 'deny';
  /** 5xx for SMTP. */
  code: number;
  enhanced?: EnhancedCode;
  message: string;
  /** Close the connection after replying. */
  disconnect?: boolean;
}
export interface DeferVerdict {
  kind: 'defer';
  /** 4xx for SMTP. */
  code: number;
  enhanced?: EnhancedCode;
  message: string;
  disconnect?: boolean;
}
export interface DisconnectVerdict {
  kind: 'disconnect';
  code?: number;
  enhanced?: EnhancedCode;
  message?: string;
}

export type Verdict = AcceptVerdict | DenyVerdict | DeferVerdict | DisconnectVerdict;
export type HookResult = Verdict | undefined;

export function accept(message?: string, code?: number, enhanced?: EnhancedCode): AcceptVerdict {
  return { kind: 'accept', ...(message !== undefined && { message }), ...(code !== undefined && { code }), ...(enhanced && { enhanced }) };
}

export function deny(code: number, message: string, enhanced?: EnhancedCode, disconnect?: boolean): DenyVerdict {
  if (code < 500 || code > 599) throw new RangeError(`deny needs a 5xx code, got ${code}`);
  return { kind: 'deny', code, message, ...(enhanced && { enhanced }), ...(disconnect && { disconnect }) };
}

export function defer(code: number, message: string, enhanced?: EnhancedCode, disconnect?: boolean): DeferVerdict {
  if (code < 400 || code > 499) throw new RangeError(`defer needs a 4xx code, got ${code}`);
  return { kind: 'defer', code, message, ...(enhanced && { enhanced }), ...(disconnect && { disconnect }) };
}

export function disconnect(message?: string, code = 421, enhanced?: EnhancedCode): DisconnectVerdict {
  return { kind: 'disconnect', code, ...(message !== undefined && { message }), ...(enhanced && { enhanced }) };
}

export function isVerdict(value: unknown): value is Verdict {
  if (typeof value !== 'object' || value === null) return false;
  const kind = (value as { kind?: unknown }).kind;
  return kind === 'accept' || kind === 'deny' || kind === 'defer' || kind === 'disconnect';
}

/** The wire form of a verdict for an SMTP-like protocol. */
export interface Reply {
  code: number;
  /** Text after the code, qmail style: the enhanced code, if any, as `(#x.y.z)` at the end. */
  text: string;
  /** The connection is closed after this reply. */
  close: boolean;
}

/** Text with qmail's `(#x.y.z)` suffix added when an enhanced code is known and not yet in the text. */
export function qmailText(text: string, enhanced?: EnhancedCode): string {
  if (!enhanced || /\(#\d\.\d{1,3}\.\d{1,3}\)\s*$/.test(text)) return text;
  return `${text} (#${enhanced})`;
}

/**
 * Maps a verdict to an SMTP reply. `fallback` is the reply used for `accept`
 * without its own text (for example `250 ok`).
 */
export function verdictToSmtpReply(verdict: Verdict, fallback: { code: number; text: string }): Reply {
  switch (verdict.kind) {
    case 'accept':
      return { code: verdict.code ?? fallback.code, text: qmailText(verdict.message ?? fallback.text, verdict.enhanced), close: false };
    case 'deny':
      return { code: verdict.code, text: qmailText(verdict.message, verdict.enhanced), close: verdict.disconnect === true };
    case 'defer':
      return { code: verdict.code, text: qmailText(verdict.message, verdict.enhanced), close: verdict.disconnect === true };
    case 'disconnect':
      return { code: verdict.code ?? 421, text: qmailText(verdict.message ?? 'closing connection', verdict.enhanced), close: true };
  }
}

/** POP3 response code (RFC 2449/3206) for a refusing verdict. */
export function verdictToPop3Reply(verdict: DenyVerdict | DeferVerdict | DisconnectVerdict): { line: string; close: boolean } {
  const code = verdict.kind === 'deny' ? '[AUTH] ' : '[SYS/TEMP] ';
  const text = verdict.message ?? 'closing connection';
  return { line: `-ERR ${code}${text}`, close: verdict.kind === 'disconnect' || verdict.disconnect === true };
}
