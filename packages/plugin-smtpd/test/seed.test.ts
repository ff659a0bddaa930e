import { afterEach, describe, expect, it } from 'vitest';
import { RawClient, startSmtpd, type TestServer } from './helpers.js';

let t: TestServer | undefined;
afterEach(async () => {
  await t?.stop();
  t = undefined;
});

describe('the seed session (004)', () => {
  it('is answered byte for byte as qmail-smtpd answers it', async () => {
    t = await startSmtpd({ me: 'yourhostname.abbtS.ch' });
    const c = await RawClient.open(t.port());
    const lines = ['EHLO', 'MAIL FROM: omtest@somedomain.ext', 'RCPT TO: vorname', 'DATA'];
    expect(await c.reply()).toBe('220 yourhostname.abbtS.ch ESMTP');
    expect(await c.command(lines[0]!)).toBe('250-yourhostname.abbtS.ch\r\n250-PIPELINING\r\n250 8BITMIME');
    expect(await c.command(lines[1]!)).toBe('250 ok');
    expect(await c.command(lines[2]!)).toBe('250 ok');
    expect(await c.command(lines[3]!)).toBe('354 go ahead');
    c.write('Subject: test Mail\r\n\r\nok so?\r\ngut!\r\n\r\n.\r\n');
    const done = await c.reply();
    expect(done).toMatch(/^250 ok \d+ qp \d+$/);
    expect(await c.command('QUIT')).toBe('221 yourhostname.abbtS.ch');
    await c.waitClosed();
    const expected = new RegExp(
      '^220 yourhostname\\.abbtS\\.ch ESMTP\\r\\n250-yourhostname\\.abbtS\\.ch\\r\\n250-PIPELINING\\r\\n250 8BITMIME\\r\\n' +
        '250 ok\\r\\n250 ok\\r\\n354 go ahead\\r\\n250 ok \\d+ qp \\d+\\r\\n221 yourhostname\\.abbtS\\.ch\\r\\n$',
    );
    expect(c.received).toMatch(expected);

    const [stored] = t.messages();
    expect(stored?.envelope).toEqual({ sender: 'omtest@somedomain.ext', recipients: ['vorname@yourhostname.abbtS.ch'] });
    expect(stored?.data).toMatch(
      /^Received: from localhost \(HELO \) \(127\.0\.0\.1\)\n {2}by yourhostname\.abbtS\.ch with SMTP; \d{1,2} [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d -0000\nSubject: test Mail\n\nok so\?\ngut!\n\n$/,
    );
  });
});
