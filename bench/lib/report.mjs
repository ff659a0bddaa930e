// Turns the measurements into the raw JSON, a Markdown report (median [min–max]
// over the repetitions, quail/peer ratios computed per repetition) and an SVG
// chart of throughput against concurrency.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { summary } from './stats.mjs';

export const METRICS = {
  msgsPerSec: { label: 'msgs/s', better: 'higher' },
  acceptMsgsPerSec: { label: 'accepted msgs/s', better: 'higher' },
  cpuMsPerMsg: { label: 'server CPU ms/msg', better: 'lower' },
  rssMiB: { label: 'server RSS MiB', better: 'lower' },
  MBps: { label: 'MB/s', better: 'higher' },
  peakRssGrowthMiB: { label: 'peak RSS growth MiB', better: 'lower' },
  rssKiBPerSession: { label: 'RSS KiB/session', better: 'lower' },
  pssKiBPerSession: { label: 'PSS KiB/session', better: 'lower' },
  processes: { label: 'processes', better: 'lower' },
  heldSessions: { label: 'sessions held (checked)', better: 'none' },
  ms: { label: 'ms', better: 'lower' },
  p50Ms: { label: 'p50 ms', better: 'lower' },
  p99Ms: { label: 'p99 ms', better: 'lower' },
  opsPerSec: { label: 'ops/s', better: 'higher' },
  rssAfterMiB: { label: 'RSS when idle MiB', better: 'lower' },
  rssAtStartMiB: { label: 'RSS at start MiB', better: 'lower' },
  startMs: { label: 'start ms', better: 'lower' },
  idleMs: { label: 'start to scheduler idle ms', better: 'lower' },
  firstMs: { label: 'first ms', better: 'lower' },
  bytes: { label: 'bytes', better: 'none' },
  messages: { label: 'messages', better: 'none' },
  speedup: { label: 'speed-up', better: 'higher' },
};

/** Metrics that get a quail/peer ratio per repetition. */
const RATIO_METRICS = ['msgsPerSec', 'cpuMsPerMsg', 'MBps', 'rssKiBPerSession', 'ms'];

const isQuail = (target) => target.startsWith('quail');

function fmt(x) {
  if (x === undefined || !Number.isFinite(x)) return '–';
  const a = Math.abs(x);
  if (a >= 1000) return Math.round(x).toLocaleString('en-US');
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  if (a >= 1) return x.toFixed(2);
  return x.toPrecision(2);
}

function cell(s) {
  if (!s) return '–';
  if (s.n === 1) return fmt(s.median);
  return `${fmt(s.median)} [${fmt(s.min)}–${fmt(s.max)}]`;
}

function groupBy(list, key) {
  const m = new Map();
  for (const x of list) {
    const k = key(x);
    if (!m.has(k)) m.set(k, []);
    m.get(k).push(x);
  }
  return m;
}

/** Per scenario and case: per target the summary of each metric; per quail/peer pair the ratios. */
export function summarise(measurements) {
  const out = [];
  for (const [scenario, rows] of groupBy(measurements, (m) => m.scenario)) {
    const cases = [];
    for (const [caseLabel, caseRows] of groupBy(rows, (m) => m.case)) {
      const metricNames = [...new Set(caseRows.flatMap((r) => Object.keys(r).filter((k) => METRICS[k] && typeof r[k] === 'number')))];
      const targets = [];
      for (const [target, tRows] of groupBy(caseRows, (m) => m.target)) {
        const stats = {};
        for (const k of metricNames) {
          const s = summary(tRows.map((r) => r[k]).filter((v) => typeof v === 'number'));
          if (s) stats[k] = s;
        }
        targets.push({ target, stats });
      }
      const ratios = [];
      const names = targets.map((t) => t.target);
      for (const q of names.filter(isQuail)) {
        for (const p of names.filter((n) => !isQuail(n))) {
          for (const k of metricNames.filter((m) => RATIO_METRICS.includes(m))) {
            const perRep = [];
            for (const qr of caseRows.filter((r) => r.target === q)) {
              const pr = caseRows.find((r) => r.target === p && r.rep === qr.rep);
              if (pr && typeof qr[k] === 'number' && typeof pr[k] === 'number' && pr[k] !== 0) perRep.push(qr[k] / pr[k]);
            }
            const s = summary(perRep);
            if (s) ratios.push({ quail: q, peer: p, metric: k, ...s });
          }
        }
      }
      cases.push({ case: caseLabel, metrics: metricNames, targets, ratios });
    }
    out.push({ scenario, cases });
  }
  return out;
}

const TITLES = {
  'smtp-accept': 'SMTP accepted durably (2 KB, new connection per message)',
  'smtp-10mb': 'SMTP, 10 MB messages',
  'idle-sessions': 'Idle SMTP sessions after EHLO',
  'smtp-maildir': 'SMTP end to end into Maildir (2 KB, new connection per message)',
  pop3: 'POP3 on one large Maildir',
  remote: 'Remote delivery to smtp-sink through smtproutes',
  'deferred-queue': 'Start-up with a queue of deferred messages',
  'micro-queue': 'plugin-queue (in process)',
  'micro-maildir': 'plugin-maildir (in process)',
  'micro-vpopmail': 'plugin-vpopmail (in process)',
};

export function markdown({ meta, notes }, summaryList) {
  const lines = [];
  lines.push(`Run: ${meta.date}, ${meta.mode}, ${meta.reps} repetition(s), ${meta.durationSec} s; Node ${meta.node}, ${meta.cpus} × ${meta.cpuModel}, ${meta.memGiB} GiB; load average (1/5/15 min) ${meta.loadavgAtStart?.join(' ')} at start, ${meta.loadavgAtEnd?.join(' ')} at the end.`);
  lines.push('Cells: median [min–max] over the repetitions. Ratios are quail/peer computed per repetition (back-to-back pairs), then summarised; for CPU, memory and time a ratio below 1 favours quail.');
  lines.push('');
  for (const { scenario, cases } of summaryList) {
    lines.push(`### ${TITLES[scenario] ?? scenario}`);
    lines.push('');
    const metricNames = [...new Set(cases.flatMap((c) => c.metrics))];
    lines.push(`| case | target | ${metricNames.map((m) => METRICS[m].label).join(' | ')} |`);
    lines.push(`|---|---|${metricNames.map(() => '---:').join('|')}|`);
    for (const c of cases) {
      for (const t of c.targets) {
        lines.push(`| ${c.case} | ${t.target} | ${metricNames.map((m) => cell(t.stats[m])).join(' | ')} |`);
      }
    }
    const ratios = cases.flatMap((c) => c.ratios.map((r) => ({ ...r, case: c.case })));
    if (ratios.length) {
      lines.push('');
      lines.push('| case | quail / peer | metric | ratio |');
      lines.push('|---|---|---|---:|');
      for (const r of ratios) lines.push(`| ${r.case} | ${r.quail} / ${r.peer} | ${METRICS[r.metric].label} | ${cell(r)} |`);
    }
    lines.push('');
  }
  if (notes.length) {
    lines.push('### Notes from the run');
    lines.push('');
    for (const n of notes) lines.push(`- ${n.scenario}: ${n.text.split('\n')[0]}`);
    lines.push('');
  }
  return lines.join('\n');
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2'];

/** Lines of msgs/s against concurrency, one per target, with min–max whiskers. */
export function throughputSvg(summaryList, scenarios = ['smtp-accept', 'smtp-maildir']) {
  const series = [];
  for (const { scenario, cases } of summaryList) {
    if (!scenarios.includes(scenario)) continue;
    for (const c of cases) {
      const m = /^c=(\d+)$/.exec(c.case);
      if (!m) continue;
      for (const t of c.targets) {
        const s = t.stats.msgsPerSec;
        if (!s) continue;
        const label = scenario === 'smtp-accept' ? `${t.target} (accept)` : `${t.target} (into Maildir)`;
        let line = series.find((x) => x.label === label);
        if (!line) series.push((line = { label, points: [] }));
        line.points.push({ c: Number(m[1]), ...s });
      }
    }
  }
  const W = 760;
  const H = 420;
  const left = 70;
  const right = 230;
  const top = 40;
  const bottom = 50;
  const cs = [...new Set(series.flatMap((s) => s.points.map((p) => p.c)))].sort((a, b) => a - b);
  const maxY = Math.max(1, ...series.flatMap((s) => s.points.map((p) => p.max)));
  const niceMax = 10 ** Math.floor(Math.log10(maxY)) * Math.ceil(maxY / 10 ** Math.floor(Math.log10(maxY)));
  const x = (c) => left + (cs.length === 1 ? (W - left - right) / 2 : (cs.indexOf(c) / (cs.length - 1)) * (W - left - right));
  const y = (v) => top + (1 - v / niceMax) * (H - top - bottom);
  const out = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${left}" y="22" font-size="14" font-weight="bold">Messages per second against concurrent clients (median, min–max)</text>`);
  for (let i = 0; i <= 5; i++) {
    const v = (niceMax * i) / 5;
    out.push(`<line x1="${left}" x2="${W - right}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/>`);
    out.push(`<text x="${left - 6}" y="${y(v) + 4}" text-anchor="end">${Math.round(v)}</text>`);
  }
  for (const c of cs) out.push(`<text x="${x(c)}" y="${H - bottom + 18}" text-anchor="middle">c=${c}</text>`);
  out.push(`<text x="${(left + W - right) / 2}" y="${H - 10}" text-anchor="middle">concurrent SMTP clients (new connection per message, 2 KB)</text>`);
  out.push(`<line x1="${left}" x2="${left}" y1="${top}" y2="${H - bottom}" stroke="#333"/>`);
  out.push(`<line x1="${left}" x2="${W - right}" y1="${H - bottom}" y2="${H - bottom}" stroke="#333"/>`);
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length];
    const pts = s.points.sort((a, b) => a.c - b.c);
    const dash = s.label.includes('Maildir') ? ' stroke-dasharray="6 4"' : '';
    out.push(`<polyline fill="none" stroke="${color}" stroke-width="2"${dash} points="${pts.map((p) => `${x(p.c)},${y(p.median)}`).join(' ')}"/>`);
    for (const p of pts) {
      out.push(`<line x1="${x(p.c)}" x2="${x(p.c)}" y1="${y(p.min)}" y2="${y(p.max)}" stroke="${color}"/>`);
      out.push(`<circle cx="${x(p.c)}" cy="${y(p.median)}" r="3.5" fill="${color}"/>`);
    }
    const ly = top + 10 + i * 20;
    out.push(`<line x1="${W - right + 15}" x2="${W - right + 40}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="2"${dash}/>`);
    out.push(`<text x="${W - right + 46}" y="${ly + 4}">${escapeXml(s.label)}</text>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

function escapeXml(s) {
  return s.replace(/[<>&"]/g, (ch) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[ch]);
}

/** Writes <name>.json, <name>.md and <name>-throughput.svg (name: the mode, plus the --only list); returns their paths. */
export async function writeReport(dir, data) {
  const summaryList = summarise(data.measurements);
  const base = join(dir, data.meta.name ?? data.meta.mode);
  const files = [`${base}.json`, `${base}.md`];
  await writeFile(files[0], `${JSON.stringify({ ...data, summary: summaryList }, null, 2)}\n`);
  await writeFile(files[1], `${markdown(data, summaryList)}\n`);
  if (summaryList.some((s) => s.scenario === 'smtp-accept' || s.scenario === 'smtp-maildir')) {
    const svg = `${base}-throughput.svg`;
    await writeFile(svg, throughputSvg(summaryList));
    files.push(svg);
  }
  return files;
}
