/** A reply to send: code and one or more lines of text; `close` ends the connection after it. */
export interface SmtpReply {
  code: number;
  text: string | string[];
  close?: boolean;
}

export function reply(code: number, text: string | string[], close = false): SmtpReply {
  return close ? { code, text, close } : { code, text };
}

/** qmail-smtpd's texts (reference 2.3) and the auth/TLS patch texts (2.10) quail answers with. */
export const Texts = {
  ok: 'ok',
  flushed: 'flushed',
  goAhead: 'go ahead',
  vrfy: "send some mail, i'll try my best",
  help: 'qmail home page: http://pobox.com/~djb/qmail.html',
  unimplemented: 'unimplemented (#5.5.1)',
  mailFirst: 'MAIL first (#5.5.1)',
  rcptFirst: 'RCPT first (#5.5.1)',
  syntax: 'syntax error (#5.5.4)',
  badmailfrom: 'sorry, your envelope sender is in my badmailfrom list (#5.7.1)',
  rcpthosts: "sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)",
  databytes: 'sorry, that message size exceeds my databytes limit (#5.3.4)',
  hops: 'too many hops, this message is looping (#5.4.6)',
  qqt: 'qqt failure (#4.3.0)',
  qqWrite: 'qq write error or disk full (#4.3.0)',
  bareLf: 'See http://pobox.com/~djb/docs/smtplf.html.',
  timeout: 'timeout (#4.4.2)',
  tooManyRcpt: 'sorry, too many recipients (#4.5.3)',
  heloFirst: 'send HELO/EHLO first (#5.5.1)',
  heloSyntax: 'syntax: HELO/EHLO hostname (#5.5.4)',
  badParams: 'syntax error in parameters (#5.5.4)',
  authRequired: 'authentication required (#5.7.0)',
  authOk: 'ok, go ahead (#2.0.0)',
  authFailed: 'authentication failed (#5.7.1)',
  authUnknown: 'auth type unimplemented (#5.5.1)',
  authCanceled: 'auth exchange canceled (#5.0.0)',
  authMalformed: 'malformed auth input (#5.5.4)',
  authTwice: "you're already authenticated (#5.5.0)",
  authInTransaction: 'no auth during mail transaction (#5.5.0)',
  authTemporary: "oops, problem with child and I can't auth (#4.3.0)",
  authNeedsTls: 'encryption required for requested authentication mechanism (#5.7.11)',
  tlsReady: 'ready for tls',
  tlsActive: 'TLS already active (#5.5.1)',
  tlsParams: 'Syntax error (no parameters allowed) (#5.5.4)',
  internal: 'temporary failure in the server (#4.3.0)',
} as const;
