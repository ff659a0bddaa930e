import { execFile } from 'node:child_process';
import { readdir, readFile, stat, writeFile, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Daemon, assertBuilt, eventually, freePort, quail, tempDir } from './helpers.js';
import { SmtpPeer } from '@quail/testkit';

const run = promisify(execFile);

/** Runs a Python 3 snippet (smtplib, poplib) with arguments. */
async function python(script: string, args: Array<string | number>): Promise<string> {
  const { stdout } = await run('python3', ['-c', script, ...args.map(String)], { timeout: 60_000 });
  return stdout;
}

const SMTPLIB_SEND = `
import smtplib, sys
host, port, sender, rcpt, subject = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
s = smtplib.SMTP(host, port, timeout=30)
s.ehlo('client.example.net')
s.sendmail(sender, [rcpt], 'From: %s\\r\\nTo: %s\\r\\nSubject: %s\\r\\n\\r\\n.leading dot\\r\\nsent by smtplib\\r\\n' % (sender, rcpt, subject))
s.quit()
print('sent')
`;

const POPLIB_READ = `
import poplib, sys
p = poplib.POP3(sys.argv[1], int(sys.argv[2]), timeout=30)
p.user(sys.argv[3]); p.pass_(sys.argv[4])
count, size = p.stat()
print('STAT %d %d' % (count, size))
for i in range(1, count + 1):
    print('=== %d' % i)
    print(b'\\n'.join(p.retr(i)[1]).decode('latin-1'))
p.quit()
`;

/** Sends one message of about the given size; prints "sent" or "refused <code>". */
const SMTPLIB_SIZED = `
import smtplib, sys
host, port, rcpt, size, subject = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
s = smtplib.SMTP(host, port, timeout=30)
body = ''.join('%s\\r\\n' % ('y' * 70) for _ in range(size // 72))
try:
    s.sendmail('sizer@example.org', [rcpt], 'Subject: %s\\r\\n\\r\\n%s' % (subject, body))
    print('sent')
except (smtplib.SMTPDataError, smtplib.SMTPSenderRefused) as e:
    print('refused %d' % e.smtp_code)
s.quit()
`;

/** Sends messages over several connections until the server goes away; prints ACK <subject> for each 250. */
const SMTPLIB_LOAD = `
import smtplib, sys, threading
host, port, rcpt, count = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
lock = threading.Lock()
def worker(n):
    for i in range(count):
        subject = 'load-%d-%d' % (n, i)
        try:
            s = smtplib.SMTP(host, port, timeout=30)
            s.sendmail('loader@example.org', [rcpt], 'Subject: %s\\r\\n\\r\\n%s\\r\\n' % (subject, 'x' * 2000))
            with lock:
                print('ACK ' + subject, flush=True)
            try: s.quit()
            except Exception: pass
        except Exception as e:
            with lock:
                print('FAIL %s %s' % (subject, type(e).__name__), flush=True)
            return
threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
for t in threads: t.start()
for t in threads: t.join()
`;

async function maildirFiles(maildir: string): Promise<string[]> {
  const out: string[] = [];
  for (const sub of ['new', 'cur']) {
    for (const f of await readdir(join(maildir, sub)).catch(() => [] as string[])) out.push(join(maildir, sub, f));
  }
  return out;
}

async function maildirTexts(maildir: string): Promise<string[]> {
  return Promise.all((await maildirFiles(maildir)).map((f) => readFile(f, 'latin1')));
}

describe('the quail command end to end', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let root: string;
  let smtp: number;
  let submission: number;
  let pop3: number;
  let daemon: Daemon | undefined;
  let peer: SmtpPeer;
  let joeMaildir: string;

  beforeAll(async () => {
    assertBuilt();
    ({ dir, cleanup } = await tempDir());
    root = join(dir, 'r');
    smtp = await freePort();
    submission = await freePort();
    pop3 = await freePort();
    peer = await SmtpPeer.start({ refuse: (rcpt) => /^refuse/i.test(rcpt) });
    joeMaildir = join(root, 'domains', 'example.test', 'joe', 'Maildir');
  });

  afterAll(async () => {
    await daemon?.stop();
    await quail(['ctl', 'stop', '--root', root]);
    await peer.close();
    await cleanup();
  });

  const startDaemon = async () => {
    daemon = new Daemon(['start', '--root', root]);
    await daemon.waitFor(/serving with plugins smtpd, pop3, queue, vpopmail, local, remote, maildir/);
    return daemon;
  };

  it('sets up a root with a virtual domain and users', async () => {
    const init = await quail(['init', root, '--me', 'mx.test', '--smtp', `127.0.0.1:${smtp}`, '--submission', `127.0.0.1:${submission}`, '--pop3', `127.0.0.1:${pop3}`]);
    expect(init.code).toBe(0);
    const add = await quail(['vadddomain', '--root', root, 'example.test', 'Postmaster-1']);
    expect(add.stderr).toBe('');
    expect(add.code).toBe(0);
    expect((await quail(['vadduser', '--root', root, 'joe@example.test', 'Secret-1'])).code).toBe(0);
    const fwd = await quail(['vadduser', '--root', root, '-r', 'fwd@example.test']);
    expect(fwd.stdout).toMatch(/^Random password: \S{8,}$/m);
    expect(await readFile(join(root, 'control', 'rcpthosts'), 'utf8')).toMatch(/^example\.test$/m);
    expect(await readFile(join(root, 'control', 'virtualdomains'), 'utf8')).toMatch(/^example\.test:example\.test$/m);
    const info = await quail(['vuserinfo', '--root', root, 'joe@example.test']);
    expect(info.stdout).toMatch(/^clear passwd: Secret-1$/m);
    const all = await quail(['vuserinfo', '--root', root, '-D', 'example.test']);
    expect(all.stdout).toMatch(/^name: +joe$/m);
    expect(all.stdout).toMatch(/^name: +fwd$/m);
    expect(all.stdout).toMatch(/^name: +postmaster$/m);
    await writeFile(join(root, 'control', 'smtproutes'), `remote.test:127.0.0.1:${peer.port}\n`);
    await writeFile(join(root, 'domains', 'example.test', 'fwd', '.qmail'), '&friend@remote.test\n');
  });

  it('starts, with an owner-only control socket and a pid file', async () => {
    const d = await startDaemon();
    const sock = await stat(join(root, 'quail.sock'));
    expect(sock.isSocket()).toBe(true);
    expect(sock.mode & 0o777).toBe(0o600);
    expect(Number(await readFile(join(root, 'quail.pid'), 'utf8'))).toBe(d.child.pid);
    const st = await quail(['ctl', 'stat', '--root', root]);
    expect(st.code).toBe(0);
    expect(st.stdout).toMatch(new RegExp(`^quail: up \\(pid ${d.child.pid}\\) \\d+ seconds$`, 'm'));
    expect(st.stdout).toMatch(/^quail\/worker: up \(pid \d+\) \d+ seconds, restarts 0$/m);
    expect(st.stdout).toMatch(/^messages in queue: \d+$/m);
  }, 60_000);

  it('accepts mail from swaks and smtplib, delivers it to the Maildir, and serves it over POP3', async () => {
    const swaks = await run('swaks', ['--server', `127.0.0.1:${smtp}`, '--from', 'alice@example.org', '--to', 'joe@example.test', '--header', 'Subject: via swaks', '--body', 'hello from swaks'], { timeout: 60_000 });
    expect(swaks.stdout).toMatch(/<- {2}250 ok \d+ qp \d+/);
    expect(await python(SMTPLIB_SEND, ['127.0.0.1', smtp, 'bob@example.org', 'joe@example.test', 'via smtplib'])).toBe('sent\n');
    const texts = await eventually(async () => {
      const t = await maildirTexts(joeMaildir);
      return t.length >= 2 ? t : undefined;
    }, 'two messages in joe/Maildir');
    const swaksCopy = texts.find((t) => t.includes('Subject: via swaks'))!;
    const smtplibCopy = texts.find((t) => t.includes('Subject: via smtplib'))!;
    expect(smtplibCopy).toMatch(/\n\n\.leading dot\nsent by smtplib\n$/);
    expect(swaksCopy).toMatch(/^Return-Path: <alice@example\.org>\nDelivered-To: joe@example\.test\nReceived: \(qmail \d+ invoked from network\); .*\nReceived: from .* by mx\.test with SMTP; /s);
    const pop = await python(POPLIB_READ, ['127.0.0.1', pop3, 'joe@example.test', 'Secret-1']);
    expect(pop).toMatch(/^STAT 2 \d+$/m);
    expect(pop).toContain('Subject: via swaks');
    expect(pop).toContain('Subject: via smtplib');
    expect(pop).toMatch(/^\.leading dot$/m);
  }, 120_000);

  it('refuses an unknown user of a virtual domain at RCPT', async () => {
    const r = await run('swaks', ['--server', `127.0.0.1:${smtp}`, '--from', 'alice@example.org', '--to', 'nobody@example.test', '--quit-after', 'RCPT'], { timeout: 60_000 }).catch((e: { stdout: string }) => e);
    expect(r.stdout).toMatch(/<\*\* 550 sorry, no mailbox here by that name\. \(#5\.1\.1\)/);
  }, 60_000);

  it("forwards through a user's .qmail to a remote peer on loopback, keeping the sender", async () => {
    await run('swaks', ['--server', `127.0.0.1:${smtp}`, '--from', 'carol@example.org', '--to', 'fwd@example.test', '--header', 'Subject: please forward'], { timeout: 60_000 });
    const got = await eventually(() => peer.messages.find((m) => m.data.includes('Subject: please forward')), 'the forwarded message at the peer');
    expect(got.recipients).toEqual(['friend@remote.test']);
    expect(got.sender).toBe('carol@example.org');
    expect(got.data).toMatch(/^Delivered-To: fwd@example\.test$/m);
  }, 60_000);

  it("bounces a message the peer refuses back to the sender in qmail's format", async () => {
    const before = (await maildirFiles(joeMaildir)).length;
    const inj = await quail(['inject', '--root', root, '-f', 'joe@example.test', 'refuse-me@remote.test'], { input: 'Subject: doomed\n\nthis will bounce\n' });
    expect(inj.stderr).toBe('');
    expect(inj.code).toBe(0);
    const bounce = await eventually(async () => (await maildirTexts(joeMaildir)).find((t) => t.includes('qmail-send program')), 'the bounce in joe/Maildir');
    expect((await maildirFiles(joeMaildir)).length).toBe(before + 1);
    expect(bounce).toMatch(/^Return-Path: <>$/m);
    expect(bounce).toMatch(/^From: MAILER-DAEMON@mx\.test$/m);
    expect(bounce).toMatch(/^Hi\. This is the qmail-send program at mx\.test\.$/m);
    expect(bounce).toMatch(/^<refuse-me@remote\.test>:$/m);
    expect(bounce).toMatch(/550 5\.1\.1 <refuse-me@remote\.test>: no such user here/);
    expect(bounce).toMatch(/^--- Below this line is a copy of the message\.$/m);
    expect(bounce).toMatch(/^Subject: doomed$/m);
  }, 60_000);

  it('queues a 5 MB message from quail sendmail through the control socket, intact', async () => {
    const line = `${'0123456789'.repeat(7)}\n`;
    const body = line.repeat(Math.ceil((5 * 1024 * 1024) / line.length));
    const r = await quail(['sendmail', '--root', root, '-f', 'big@example.org', 'joe@example.test'], { input: `Subject: five megabytes\n\n${body}` });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const copy = await eventually(async () => (await maildirTexts(joeMaildir)).find((t) => t.includes('Subject: five megabytes')), 'the big message delivered');
    expect(copy).toMatch(/^Received: \(qmail \d+ invoked by uid \d+\); /m);
    expect(copy).toMatch(/^Message-ID: <\d{14}\.\d+\.qmail@mx\.test>$/m);
    expect(copy.endsWith(`\n\n${body}`)).toBe(true);
  }, 60_000);

  it('answers ctl queue, doqueue and reload', async () => {
    const q = await quail(['ctl', 'queue', '--root', root]);
    expect(q.code).toBe(0);
    expect(q.stdout).toMatch(/^messages in queue: \d+\nmessages in queue but not yet preprocessed: \d+$/m);
    const dq = await quail(['ctl', 'doqueue', '--root', root]);
    expect(dq.code).toBe(0);
    expect(dq.stdout).toContain('retried now');
    const rl = await quail(['ctl', 'reload', '--root', root]);
    expect(rl.code).toBe(0);
    expect(rl.stdout).toBe('quail: control files reloaded\n');
  }, 60_000);

  it('holds deliveries with ctl pause and lets them go with ctl cont', async () => {
    const paused = await quail(['ctl', 'pause', '--root', root]);
    expect(paused.stdout).toBe('quail: deliveries paused\n');
    const inj = await quail(['inject', '--root', root, 'joe@example.test'], { input: 'Subject: held back\n\nwaits for cont\n' });
    expect(inj.code).toBe(0);
    const listing = (await quail(['ctl', 'queue', '--root', root])).stdout;
    expect(listing).toMatch(/^\tlocal\texample\.test-joe@example\.test$/m);
    expect((await maildirTexts(joeMaildir)).some((t) => t.includes('Subject: held back'))).toBe(false);
    expect((await quail(['ctl', 'cont', '--root', root])).stdout).toBe('quail: deliveries resumed\n');
    await eventually(async () => (await maildirTexts(joeMaildir)).some((t) => t.includes('Subject: held back')), 'delivery after cont');
  }, 60_000);

  it('keeps the old configuration when SIGHUP finds a broken control file', async () => {
    const sendSized = (bytes: number, subject: string) => python(SMTPLIB_SIZED, ['127.0.0.1', smtp, 'joe@example.test', bytes, subject]);
    await writeFile(join(root, 'control', 'databytes'), '3000\n');
    expect((await quail(['ctl', 'reload', '--root', root])).code).toBe(0);
    expect(await sendSized(6000, 'too big')).toMatch(/^refused 552/);
    await writeFile(join(root, 'control', 'databytes'), 'lots\n');
    process.kill(daemon!.child.pid!, 'SIGHUP');
    await daemon!.waitFor(/reload refused, old configuration stays: control\/databytes:1: not an integer: "lots"/);
    const rl = await quail(['ctl', 'reload', '--root', root]);
    expect(rl.code).toBe(100);
    expect(rl.stderr).toBe('quail ctl reload: reload refused, old configuration stays: control/databytes:1: not an integer: "lots"\n');
    expect(await sendSized(6000, 'still too big')).toMatch(/^refused 552/);
    expect(await sendSized(500, 'after broken hup')).toBe('sent\n');
    await eventually(async () => (await maildirTexts(joeMaildir)).some((t) => t.includes('Subject: after broken hup')), 'delivery after a refused reload');
    await rm(join(root, 'control', 'databytes'));
    process.kill(daemon!.child.pid!, 'SIGHUP');
    await eventually(async () => (await sendSized(6000, 'big is fine again')) === 'sent\n', 'the repaired configuration in force');
  }, 90_000);

  it('v* commands make a running daemon reload: a new domain takes mail at once', async () => {
    expect((await quail(['vadddomain', '--root', root, 'second.test', 'Postmaster-2'])).code).toBe(0);
    expect((await quail(['vadduser', '--root', root, 'amy@second.test', 'Secret-3'])).code).toBe(0);
    const r = await run('swaks', ['--server', `127.0.0.1:${smtp}`, '--from', 'alice@example.org', '--to', 'amy@second.test', '--header', 'Subject: new domain'], { timeout: 60_000 });
    expect(r.stdout).toMatch(/<- {2}250 ok \d+ qp \d+/);
    const amy = join(root, 'domains', 'second.test', 'amy', 'Maildir');
    await eventually(async () => (await maildirTexts(amy)).some((t) => t.includes('Subject: new domain')), 'delivery to the new domain');
  }, 60_000);

  it('restarts the server after a crash of its worker and serves again', async () => {
    const st = await quail(['ctl', 'stat', '--root', root]);
    const pid = Number(/quail\/worker: up \(pid (\d+)\)/.exec(st.stdout)![1]);
    process.kill(pid, 'SIGKILL');
    await daemon!.waitFor(new RegExp(`worker ${pid} died \\(signal SIGKILL\\) after \\d+ s; restarting in \\d+ s`));
    await daemon!.waitFor(/restarts 1|serving with plugins[\s\S]*serving with plugins/);
    await eventually(async () => /restarts 1$/m.test((await quail(['ctl', 'stat', '--root', root])).stdout) && /worker: up/.test((await quail(['ctl', 'stat', '--root', root])).stdout), 'the new worker');
    expect(await python(SMTPLIB_SEND, ['127.0.0.1', smtp, 'erin@example.org', 'joe@example.test', 'after crash'])).toBe('sent\n');
    await eventually(async () => (await maildirTexts(joeMaildir)).some((t) => t.includes('Subject: after crash')), 'delivery after the restart');
  }, 90_000);

  it('loses nothing acknowledged when SIGTERM arrives under load', async () => {
    await mkdir(join(dir, 'load'), { recursive: true });
    const load = python(SMTPLIB_LOAD, ['127.0.0.1', smtp, 'joe@example.test', 200]);
    await eventually(async () => (await maildirTexts(joeMaildir)).filter((t) => t.includes('Subject: load-')).length >= 8, 'some load delivered', 60_000);
    process.kill(daemon!.child.pid!, 'SIGTERM');
    const output = await load;
    expect(await daemon!.exited).toBe(0);
    const acked = output.split('\n').filter((l) => l.startsWith('ACK ')).map((l) => l.slice(4));
    expect(acked.length).toBeGreaterThanOrEqual(8);
    expect(output).toMatch(/^FAIL /m);
    await startDaemon();
    await eventually(async () => /^messages in queue: 0$/m.test((await quail(['ctl', 'stat', '--root', root])).stdout), 'an empty queue', 60_000);
    const delivered = new Set((await maildirTexts(joeMaildir)).map((t) => /^Subject: (load-\S+)$/m.exec(t)?.[1]).filter(Boolean));
    const lost = acked.filter((s) => !delivered.has(s));
    expect(lost).toEqual([]);
  }, 180_000);

  it('stops with ctl stop, and ctl start runs it detached with multilog-stamped logs', async () => {
    const stop = await quail(['ctl', 'stop', '--root', root]);
    expect(stop.stdout).toBe('quail: stopping\nquail: stopped\n');
    expect(await daemon!.exited).toBe(0);
    daemon = undefined;
    const start = await quail(['ctl', 'start', '--root', root]);
    expect(start.stderr).toBe('');
    expect(start.stdout).toMatch(/^quail: started \(pid \d+\)\n$/);
    await eventually(async () => /worker: up/.test((await quail(['ctl', 'stat', '--root', root])).stdout), 'the detached daemon serving');
    const current = await readFile(join(root, 'log', 'quail', 'current'), 'utf8');
    const lines = current.trim().split('\n');
    expect(lines.length).toBeGreaterThan(2);
    for (const line of lines) expect(line).toMatch(/^@4000[0-9a-f]{20} /);
    const again = await quail(['ctl', 'start', '--root', root]);
    expect(again.stdout).toMatch(/^quail: already running \(pid \d+\)\n$/);
    const restart = await quail(['ctl', 'restart', '--root', root]);
    expect(restart.stdout).toMatch(/^quail: restarted \(worker pid \d+\)\n$/);
    expect((await quail(['ctl', 'stop', '--root', root])).code).toBe(0);
    const after = await quail(['ctl', 'stat', '--root', root]);
    expect(after.code).toBe(1);
    expect(after.stderr).toMatch(/no daemon is running/);
  }, 120_000);
});
