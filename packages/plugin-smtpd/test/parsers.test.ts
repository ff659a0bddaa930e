import { describe, expect, it } from 'vitest';
import { ConfigError } from '@quail/core';
import { DataDecoder, HopCounter, lookupKeys, parseListenLines, parsePath, receivedLine, TcpRules } from '@quail/plugin-smtpd';

const fail = (at: number | string, reason: string): never => {
  throw new ConfigError('tcp.smtp', typeof at === 'number' ? at + 1 : 0, reason);
};

describe('tcprules', () => {
  const rules = TcpRules.parse(
    [
      '127.:allow,RELAYCLIENT=""',
      '10.1.:deny',
      '192.0.2.7:allow,DATABYTES="1000",GREETDELAY=\'2\'',
      '1.2.3.1-50:allow,X=/a"b/',
      '=mail.example.net:allow,RELAYCLIENT="@fixme.example"',
      '=.example.com:deny',
      '::1:allow,RELAYCLIENT=""',
      ':allow,RBLSMTPD="-no thanks"',
    ],
    fail,
  );

  it('matches in tcpserver order: exact IP, =host, IP prefixes, =.suffix, =, the empty rule', () => {
    expect(rules.match({ ip: '127.0.0.1' })).toEqual({ action: 'allow', env: { RELAYCLIENT: '' }, key: '127.' });
    expect(rules.match({ ip: '10.1.2.3' }).action).toBe('deny');
    expect(rules.match({ ip: '10.2.2.3' })).toEqual({ action: 'allow', env: { RBLSMTPD: '-no thanks' }, key: '' });
    expect(rules.match({ ip: '192.0.2.7' }).env).toEqual({ DATABYTES: '1000', GREETDELAY: '2' });
    expect(rules.match({ ip: '1.2.3.37' }).env).toEqual({ X: 'a"b' });
    expect(rules.match({ ip: '1.2.3.51' }).key).toBe('');
    expect(rules.match({ ip: '198.51.100.1', host: 'mail.example.net' }).env).toEqual({ RELAYCLIENT: '@fixme.example' });
    expect(rules.match({ ip: '198.51.100.1', host: 'a.b.example.com' }).action).toBe('deny');
    expect(rules.match({ ip: '::1' }).env).toEqual({ RELAYCLIENT: '' });
  });

  it('lets the first line of a repeated address win, as a cdb built by tcprules does', () => {
    const r = TcpRules.parse(['1.2.3.4:deny', '1.2.3.4:allow'], fail);
    expect(r.match({ ip: '1.2.3.4' }).action).toBe('deny');
  });

  it('allows with no variables when nothing matches', () => {
    expect(TcpRules.parse(['10.:deny'], fail).match({ ip: '192.0.2.1' })).toEqual({ action: 'allow', env: {} });
  });

  it('lists lookup keys longest prefix first', () => {
    expect(lookupKeys({ ip: '192.0.2.7', host: 'a.example.net' })).toEqual([
      '192.0.2.7',
      '=a.example.net',
      '192.0.2.',
      '192.0.',
      '192.',
      '=.example.net',
      '=.net',
      '=',
      '',
    ]);
  });

  it.each([
    ['127.0.0.1', 'expected address:instruction'],
    ['127.:permit', 'instruction must be allow or deny'],
    ['127.:allow,RELAYCLIENT', 'expected VAR="value"'],
    ['127.:allow,RELAYCLIENT="', 'missing closing'],
    ['127.:allow,RELAYCLIENT=""x', 'expected ","'],
    ['127.:allow,1X=""', 'bad variable name'],
    ['1.2.3.300:allow', 'bad range'],
    ['1.2.3.9-5:allow', 'bad range'],
    ['1.2.3:allow', 'a full a.b.c.d or a prefix'],
    ['../etc/passwd:allow', 'bad address'],
    ['0-255.0-255.0-255.:allow', 'expands to more than'],
    ['a b:allow', 'contains blanks'],
  ])('refuses %j naming the line', (line, reason) => {
    expect(() => TcpRules.parse([':allow', line], fail)).toThrow(/^control\/tcp\.smtp:2: /);
    expect(() => TcpRules.parse([line], fail)).toThrow(reason);
  });

  it('refuses a 10 MB line and a NUL byte without hanging', () => {
    expect(() => TcpRules.parse([`${'1'.repeat(10 * 1024 * 1024)}:allow`], fail)).toThrow(/bad/);
    expect(() => TcpRules.parse(['127.\0:allow'], fail)).toThrow(/blanks/);
  });
});

describe('listen files', () => {
  it('reads host:port lines', () => {
    expect(parseListenLines(['0.0.0.0:25', '127.0.0.1:2525', '[::1]:587', ':465', 'localhost:0'], fail)).toEqual([
      { host: '0.0.0.0', port: 25 },
      { host: '127.0.0.1', port: 2525 },
      { host: '::1', port: 587 },
      { host: '0.0.0.0', port: 465 },
      { host: 'localhost', port: 0 },
    ]);
  });

  it.each(['25', 'host:99999', 'host:port', '[nothost]:25', 'a b:25', '127.0.0.1:25\r\nX'])('refuses %j', (line) => {
    expect(() => parseListenLines([line], fail)).toThrow(ConfigError);
  });

  it('refuses the same address twice', () => {
    expect(() => parseListenLines(['127.0.0.1:25', '127.0.0.1:25'], fail)).toThrow(/listed twice/);
  });
});

describe('MAIL/RCPT argument (qmail rules, reference 2.4)', () => {
  const q = (arg: string, prefix: 'from' | 'to' = 'from') => parsePath(arg, prefix, false);

  it('takes the address in brackets, or after the colon without them', () => {
    expect(q('FROM:<a@b.example>')).toEqual({ ok: true, address: 'a@b.example', params: {} });
    expect(q('FROM: omtest@somedomain.ext')).toEqual({ ok: true, address: 'omtest@somedomain.ext', params: {} });
    expect(q('TO: vorname', 'to')).toEqual({ ok: true, address: 'vorname', params: {} });
    expect(q('FROM:<>')).toEqual({ ok: true, address: '', params: {} });
  });

  it('drops source routes and quotes, honours backslashes, reads parameters', () => {
    expect(q('TO:<@relay.example,@b.example:joe@c.example>', 'to')).toMatchObject({ address: 'joe@c.example' });
    expect(q('FROM:<"joe smith"@example.com> SIZE=1000 BODY=8BITMIME')).toEqual({
      ok: true,
      address: 'joe smith@example.com',
      params: { SIZE: '1000', BODY: '8BITMIME' },
    });
    expect(q('FROM:<a\\>b@example.com>')).toMatchObject({ address: 'a>b@example.com' });
  });

  it('refuses addresses over 900 bytes and control characters', () => {
    expect(q(`FROM:<${'a'.repeat(890)}@example.com>`)).toEqual({ ok: false, reason: 'too-long' });
    expect(q('FROM:<a\0b@example.com>')).toEqual({ ok: false, reason: 'syntax' });
    expect(q('FROM:<a\rb@example.com>')).toEqual({ ok: false, reason: 'syntax' });
  });

  it('in strict mode wants RFC 5321 paths', () => {
    expect(parsePath('FROM: a@b.example', 'from', true)).toEqual({ ok: false, reason: 'syntax' });
    expect(parsePath('FROM:<a@b.example> SIZE=10', 'from', true)).toEqual({ ok: true, address: 'a@b.example', params: { SIZE: '10' } });
    expect(parsePath('TO:<postmaster>', 'to', true)).toMatchObject({ ok: true, address: 'postmaster' });
    expect(parsePath('TO:<vorname>', 'to', true)).toEqual({ ok: false, reason: 'syntax' });
  });
});

describe('DATA state machine (reference 2.5)', () => {
  const decodeAll = (input: string, allowBareLf = false, chunk = input.length) => {
    const d = new DataDecoder({ allowBareLf });
    const data = Buffer.from(input, 'latin1');
    let out = '';
    for (let i = 0; i < data.length; i += chunk) {
      const r = d.decode(data.subarray(i, i + chunk));
      out += r.out.toString('latin1');
      if (r.kind === 'end') return { out, end: true, rest: Buffer.concat([r.rest, data.subarray(i + chunk)]).toString('latin1') };
      if (r.kind === 'bare-lf') return { out, bareLf: true };
    }
    return { out, end: false };
  };

  it('turns CRLF into LF, undoes dot-stuffing and stops at the final dot', () => {
    expect(decodeAll('Subject: x\r\n\r\n..dot\r\n.x\r\nend\r\n.\r\nQUIT\r\n')).toEqual({ out: 'Subject: x\n\n.dot\nx\nend\n', end: true, rest: 'QUIT\r\n' });
  });

  it('gives the same result however the input is split', () => {
    const input = 'a\r\n..b\r\n\r\n.\rc\r\r\nx\r.\r\n.\r\n';
    const whole = decodeAll(input);
    for (const size of [1, 2, 3, 5]) expect(decodeAll(input, false, size)).toEqual(whole);
    expect(whole).toEqual({ out: 'a\n.b\n\n.\rc\r\nx\r.\n', end: true, rest: '' });
  });

  it('refuses bare LF unless allowed', () => {
    expect(decodeAll('a\nb\r\n.\r\n')).toEqual({ out: 'a', bareLf: true });
    expect(decodeAll('.\n')).toEqual({ out: '', bareLf: true });
    expect(decodeAll('a\nb\n.\n', true)).toEqual({ out: 'a\nb\n', end: true, rest: '' });
  });

  it('passes 8-bit bytes and NUL unchanged', () => {
    expect(decodeAll('\xe4\xf6\x00\xff\r\n.\r\n')).toEqual({ out: '\xe4\xf6\x00\xff\n', end: true, rest: '' });
  });

  it('counts Received and Delivered-To lines of the header only', () => {
    const h = new HopCounter();
    h.feed(Buffer.from('Received: a\nDELIVERED-TO: b\nX: c\nreceivedx\n'));
    h.feed(Buffer.from('Deliv'));
    h.feed(Buffer.from('ered-To: c\n\nReceived: in body\n'));
    expect(h.hops).toBe(4);
  });
});

describe('Received line (reference 2.7)', () => {
  const date = new Date(Date.UTC(2024, 2, 5, 9, 4, 1));

  it('matches the reference example', () => {
    expect(receivedLine({ remoteIp: '192.0.2.7', helo: 'client.example.net', localHost: 'mx.example.org', authenticated: false, date })).toBe(
      'Received: from unknown (HELO client.example.net) (192.0.2.7)\n  by mx.example.org with SMTP; 5 Mar 2024 09:04:01 -0000\n',
    );
  });

  it('leaves out HELO when it equals the host, shows an empty one, and neutralises injection', () => {
    expect(receivedLine({ remoteHost: 'localhost', remoteIp: '127.0.0.1', helo: 'LOCALHOST', localHost: 'mx', authenticated: false, date })).toMatch(/^Received: from localhost \(127\.0\.0\.1\)\n/);
    expect(receivedLine({ remoteHost: 'localhost', remoteIp: '127.0.0.1', helo: '', localHost: 'mx', authenticated: false, date })).toMatch(/\(HELO \)/);
    expect(receivedLine({ remoteIp: '127.0.0.1', helo: 'x\r\nBcc: evil (a)', localHost: 'mx', authenticated: false, date })).toContain('(HELO x??Bcc:?evil??a?)');
  });

  it('notes the authenticated user and TLS', () => {
    expect(receivedLine({ remoteIp: '192.0.2.7', helo: 'c', remoteInfo: 'joe@example.org', localHost: 'mx', tlsCipher: 'TLS_AES_256_GCM_SHA384', authenticated: true, date })).toBe(
      'Received: from unknown (HELO c) (joe@example.org@192.0.2.7)\n  by mx with ESMTPSA (TLS_AES_256_GCM_SHA384 encrypted); 5 Mar 2024 09:04:01 -0000\n',
    );
  });
});
