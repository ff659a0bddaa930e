import { describe, expect, it } from 'vitest';
import { accept, defer, deny, disconnect, qmailText, verdictToPop3Reply, verdictToSmtpReply } from '@quail/core';

const ok = { code: 250, text: 'ok' };

describe('verdict to reply', () => {
  it('uses the fallback for a bare accept', () => {
    expect(verdictToSmtpReply(accept(), ok)).toEqual({ code: 250, text: 'ok', close: false });
    expect(verdictToSmtpReply(accept('ok 1200999831 qp 6515'), ok)).toEqual({ code: 250, text: 'ok 1200999831 qp 6515', close: false });
  });

  it('puts the enhanced code at the end of the text, qmail style', () => {
    expect(verdictToSmtpReply(deny(553, "sorry, that domain isn't in my list of allowed rcpthosts", '5.7.1'), ok)).toEqual({
      code: 553,
      text: "sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)",
      close: false,
    });
  });

  it('does not add a second enhanced code', () => {
    expect(qmailText('sorry, no mailbox here by that name. (#5.1.1)', '5.1.1')).toBe('sorry, no mailbox here by that name. (#5.1.1)');
  });

  it('maps defer and disconnect', () => {
    expect(verdictToSmtpReply(defer(451, 'try later', '4.3.0', true), ok)).toEqual({ code: 451, text: 'try later (#4.3.0)', close: true });
    expect(verdictToSmtpReply(disconnect(), ok)).toEqual({ code: 421, text: 'closing connection', close: true });
    expect(verdictToSmtpReply(disconnect('too many errors', 554), ok)).toEqual({ code: 554, text: 'too many errors', close: true });
  });

  it('maps refusals to POP3 response codes', () => {
    expect(verdictToPop3Reply(deny(550, 'authorization failed'))).toEqual({ line: '-ERR [AUTH] authorization failed', close: false });
    expect(verdictToPop3Reply(defer(451, 'try again later'))).toEqual({ line: '-ERR [SYS/TEMP] try again later', close: false });
    expect(verdictToPop3Reply(disconnect('bye'))).toEqual({ line: '-ERR [SYS/TEMP] bye', close: true });
  });

  it('refuses codes of the wrong class', () => {
    expect(() => deny(450, 'x')).toThrow(RangeError);
    expect(() => defer(550, 'x')).toThrow(RangeError);
  });
});
