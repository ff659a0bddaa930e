import { readFile } from 'node:fs/promises';
import { deferral, failure, success, type Delivery, type DeliveryResult, type Logger, type Resolver } from '@quail/core';
import { domainOf, isSendable, smtpPath } from './addresses.js';
import { findDestinations, type Candidate } from './destinations.js';
import type { RouteCredentials, SmtpRoutes } from './routes.js';
import type { SessionPool } from './session-pool.js';
import { SessionOpenError, SmtpSession, type Reply, type TransactionLog } from './smtp-session.js';
import { tlsPolicyFor, type TlsLevel, type TlsPolicy } from './tls-policy.js';
import { Texts } from './texts.js';

/** Everything a delivery reads from the control files, taken fresh for each delivery. */
export interface RemoteSettings {
  helo: string;
  /** Port for MX and address-literal destinations. */
  port: number;
  connectTimeoutMs: number;
  replyTimeoutMs: number;
  routes: SmtpRoutes;
  tls: Readonly<Record<string, TlsPolicy>>;
  isOwnName(name: string): boolean;
  isOwnIp(ip: string): boolean;
}

interface Member {
  index: number;
  address: string;
}

interface Target {
  candidate: Candidate;
  level: TlsLevel;
  ca?: Buffer;
  caFile?: string;
  credentials?: RouteCredentials;
}

type Attempt =
  | { kind: 'done'; results: DeliveryResult[] }
  /** Nothing was sent; try the next address. `connected` says whether the peer answered at all. */
  | { kind: 'next'; connected: boolean; text: string; tlsBroke: boolean };

const ok = (r: Reply): boolean => r.code >= 200 && r.code < 300;
const classify = (r: Reply, text: string): DeliveryResult => (r.code >= 500 && r.code < 600 ? failure(text) : deferral(text));

/**
 * qmail-remote's work for one delivery: find where the recipients' domain
 * receives mail, talk SMTP to the first destination that answers, and report
 * one result per recipient.
 */
export class RemoteDeliverer {
  readonly #settings: () => RemoteSettings;
  readonly #resolver: () => Resolver;
  readonly #pool: SessionPool;
  readonly #log: Logger;

  constructor(options: { settings: () => RemoteSettings; resolver: () => Resolver; pool: SessionPool; log: Logger }) {
    this.#settings = options.settings;
    this.#resolver = options.resolver;
    this.#pool = options.pool;
    this.#log = options.log;
  }

  /** One result per recipient, in the order of `delivery.recipients`. */
  async deliver(delivery: Delivery): Promise<DeliveryResult[]> {
    const results: DeliveryResult[] = new Array(delivery.recipients.length);
    const groups = new Map<string, Member[]>();
    delivery.recipients.forEach((r, index) => {
      const address = r.route.address;
      if (!isSendable(address) || domainOf(address) === '') {
        results[index] = failure(Texts.badAddress(address));
        return;
      }
      if (!isSendable(delivery.sender)) {
        results[index] = failure(Texts.badAddress(delivery.sender));
        return;
      }
      const domain = domainOf(address);
      groups.set(domain, [...(groups.get(domain) ?? []), { index, address }]);
    });
    for (const [domain, members] of groups) {
      const got = await this.#deliverDomain(delivery, domain, members);
      members.forEach((m, i) => (results[m.index] = got[i]!));
    }
    return results;
  }

  async #deliverDomain(delivery: Delivery, domain: string, members: Member[]): Promise<DeliveryResult[]> {
    const all = (r: DeliveryResult) => members.map(() => r);
    const settings = this.#settings();
    const found = await findDestinations(domain, {
      resolver: this.#resolver(),
      routes: settings.routes,
      port: settings.port,
      isOwnName: settings.isOwnName,
      isOwnIp: settings.isOwnIp,
    });
    if (found.kind === 'result') return all(found.result);

    const policy = tlsPolicyFor(settings.tls, domain, found.relay);
    let ca: Buffer | undefined;
    if (policy.caFile) {
      try {
        ca = await readFile(policy.caFile);
      } catch (err) {
        return all(deferral(Texts.badTlsPolicy(`cannot read ${policy.caFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)));
      }
    }

    let trouble: string | undefined;
    const unreachable: string[] = [];
    for (const candidate of found.candidates) {
      let level = policy.level;
      for (;;) {
        if (delivery.signal.aborted) return all(deferral(Texts.interrupted()));
        const target: Target = { candidate, level, ...(ca && { ca }), ...(policy.caFile && { caFile: policy.caFile }), ...(found.credentials && { credentials: found.credentials }) };
        const attempt = await this.#attempt(delivery, target, members, settings);
        if (attempt.kind === 'done') return attempt.results;
        this.#log.debug({ delivery: delivery.id, ip: candidate.ip, port: candidate.port }, attempt.text);
        if (attempt.connected) trouble = attempt.text;
        else unreachable.push(attempt.text);
        if (attempt.tlsBroke && level === 'may') {
          level = 'none';
          continue;
        }
        break;
      }
    }
    return all(deferral(trouble ?? Texts.noConnection(unreachable.slice(-3).join('\n'))));
  }

  /** Tries one address: a pooled connection if one is idle (RSET first), else a new one. */
  async #attempt(delivery: Delivery, target: Target, members: Member[], settings: RemoteSettings): Promise<Attempt> {
    const { candidate } = target;
    const key = [candidate.ip, candidate.port, candidate.host, target.level, target.caFile ?? '', target.credentials?.user ?? '', target.credentials?.password ?? ''].join('\0');
    for (let reuse = true; ; reuse = false) {
      let session = reuse ? this.#pool.take(key) : undefined;
      if (session && !(await session.reset())) continue;
      const reused = session !== undefined;
      if (!session) {
        this.#pool.reserve();
        try {
          session = await SmtpSession.open({
            ip: candidate.ip,
            port: candidate.port,
            host: candidate.host,
            helo: settings.helo,
            tls: { level: target.level, ...(target.ca && { ca: target.ca }) },
            ...(target.credentials && { credentials: target.credentials }),
            connectTimeoutMs: settings.connectTimeoutMs,
            replyTimeoutMs: settings.replyTimeoutMs,
          });
        } catch (err) {
          if (err instanceof SessionOpenError) return openTrouble(candidate.ip, err);
          throw err;
        }
        this.#pool.add(session);
      }
      if (session.maxSize > 0 && delivery.message.size > session.maxSize) {
        this.#pool.release(key, session);
        return { kind: 'done', results: members.map(() => failure(Texts.tooBig(candidate.ip, delivery.message.size, session.maxSize))) };
      }
      const live = session;
      const abort = () => void live.close();
      delivery.signal.addEventListener('abort', abort, { once: true });
      let log: TransactionLog;
      try {
        log = await session.send(
          { from: smtpPath(delivery.sender), to: members.map((m) => smtpPath(m.address)), size: delivery.message.size, eightBit: true },
          delivery.message.stream(),
        );
      } finally {
        delivery.signal.removeEventListener('abort', abort);
        this.#pool.release(key, session);
      }
      // A pooled connection the peer had dropped: nothing was sent, so a fresh connection may carry the message.
      if (reused && log.died && log.mail === undefined) continue;
      if (delivery.signal.aborted && log.dot === undefined) return { kind: 'done', results: members.map(() => deferral(Texts.interrupted())) };
      return { kind: 'done', results: transactionResults(candidate.ip, log, members.length) };
    }
  }
}

/** qmail-remote's reading of one transaction (reference 7.3), per recipient. */
export function transactionResults(ip: string, log: TransactionLog, count: number): DeliveryResult[] {
  const every = (r: DeliveryResult) => Array.from({ length: count }, () => r);
  const died = deferral(Texts.connectionDied(ip, log.afterDot));
  if (log.unreadable) return every(deferral(Texts.unreadable()));
  if (!log.mail) return every(died);
  if (!ok(log.mail)) return every(classify(log.mail, Texts.senderRejected(ip, log.mail.text)));
  let last: DeliveryResult;
  if (!log.data) last = died;
  else if (!(log.data.code >= 200 && log.data.code < 400)) last = classify(log.data, Texts.dataRejected(ip, log.data.text));
  else if (!log.dot) last = died;
  else if (!ok(log.dot)) last = classify(log.dot, Texts.bodyRejected(ip, log.dot.text));
  else last = success(Texts.accepted(ip, log.dot.text));
  return Array.from({ length: count }, (_, i) => {
    const rcpt = log.rcpt[i];
    if (!rcpt) return died;
    if (!ok(rcpt)) return classify(rcpt, Texts.recipientRejected(ip, rcpt.text));
    return last;
  });
}

function openTrouble(ip: string, err: SessionOpenError): Attempt {
  const reply = err.reply?.text;
  const next = (text: string, connected = true, tlsBroke = false): Attempt => ({ kind: 'next', connected, text, tlsBroke });
  switch (err.stage) {
    case 'connect':
      return next(err.message, false);
    case 'greeting':
      return next(reply ? Texts.greetingFailed(ip, reply) : Texts.connectionDied(ip, false));
    case 'helo':
      return next(reply ? Texts.nameRejected(ip, reply) : Texts.connectionDied(ip, false));
    case 'tls':
      if (err.reason === 'tls-not-offered' || reply) return next(Texts.tlsNotOffered(ip, reply));
      return next(Texts.tlsFailed(ip, err.message), true, true);
    case 'auth':
      if (err.reason === 'auth-in-clear') return next(Texts.authInClear(ip));
      if (err.reason === 'auth-not-offered') return next(Texts.authNotOffered(ip));
      return next(Texts.authRejected(ip, reply));
  }
}
