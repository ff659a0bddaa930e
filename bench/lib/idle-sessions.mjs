// Holds N SMTP sessions open after EHLO (forked by the harness, so that its own
// sockets and memory stay out of the server's figures). Reports over IPC when all
// sessions got their EHLO answer; closes them when told to.
import { connect } from 'node:net';

const [port, count, batch = 100] = process.argv.slice(2).map(Number);
const sockets = [];

function session() {
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1');
    sockets.push(sock);
    let buf = '';
    let state = 'greeting';
    const timer = setTimeout(() => reject(new Error(`session ${sockets.length}: no EHLO answer in 60 s`)), 60_000);
    sock.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    sock.on('data', (d) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i).replace(/\r$/, '');
        buf = buf.slice(i + 1);
        if (state === 'greeting' && /^220 /.test(line)) {
          state = 'ehlo';
          sock.write('EHLO bench.localhost\r\n');
        } else if (state === 'ehlo' && /^250 /.test(line)) {
          state = 'idle';
          clearTimeout(timer);
          resolve();
        } else if (/^[45]\d\d /.test(line)) {
          clearTimeout(timer);
          reject(new Error(`session refused: ${line}`));
        }
      }
    });
  });
}

try {
  for (let opened = 0; opened < count; opened += batch) {
    await Promise.all(Array.from({ length: Math.min(batch, count - opened) }, session));
  }
  process.send({ type: 'ready', sessions: sockets.length });
} catch (err) {
  process.send({ type: 'error', error: String(err.message ?? err) });
}
process.on('message', (m) => {
  if (m.cmd === 'close') {
    for (const s of sockets) s.destroy();
    process.exit(0);
  }
});
