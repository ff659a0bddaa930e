import type { AddressInfo } from 'node:net';
import { control, definePlugin, ErrorCodes, qmailFiles, QuailError, Tokens, type KernelHooks, type Queue } from '@quail/core';
import { parseListenLines, type ListenAddress } from './listen.js';
import { SmtpListener } from './listener.js';
import { SmtpSession, type SessionServices } from './session.js';
import { settingsFrom, type ListenerKind, type SmtpdConfig, type SmtpdSettings } from './settings.js';
import { TcpGate } from './tcp-gate.js';
import { TcpRules } from './tcprules.js';

const flag = { schema: { enum: [0, 1] } };

const listenFile = (description: string) =>
  control.list({ description, default: [], parse: (raw: string[], fail) => parseListenLines(raw, fail) });

/** The control files the plugin reads (qmail's own through qmailFiles, so every plugin agrees on them). */
export const smtpdControl = {
  me: qmailFiles.me,
  smtpgreeting: qmailFiles.smtpgreeting,
  envnoathost: qmailFiles.envnoathost,
  localiphost: qmailFiles.localiphost,
  databytes: qmailFiles.databytes,
  rcpthosts: qmailFiles.rcpthosts,
  morercpthosts: qmailFiles.morercpthosts,
  badmailfrom: qmailFiles.badmailfrom,
  timeoutsmtpd: qmailFiles.timeoutsmtpd,
  concurrencyincoming: qmailFiles.concurrencyincoming,
  'smtpd.listen': listenFile('host:port lines of the SMTP (port 25) listener; absent: no listener'),
  'submission.listen': listenFile('host:port lines of the submission (587) listener: AUTH before MAIL'),
  'smtps.listen': listenFile('host:port lines of the SMTPS (465, implicit TLS) listener'),
  'servercert.pem': qmailFiles['servercert.pem'],
  'tcp.smtp': control.lines({
    description: 'tcprules for SMTP connections: address:allow|deny[,VAR="value"]...',
    default: [],
    parse: (raw: string[], fail) => TcpRules.parse(raw, fail),
  }),
  maxrcpt: control.int({ description: 'recipients accepted per message', default: 100, schema: { minimum: 1, maximum: 100000 } }),
  'smtpd.maxperip': control.int({ description: 'simultaneous connections from one address (0: no limit)', default: 20, schema: { minimum: 0 } }),
  'smtpd.strict': control.int({ description: '1: RFC 5321 syntax (HELO first, <path> brackets) instead of qmail-smtpd leniency', default: 0, ...flag }),
  'smtpd.allowbarelf': control.int({ description: '1: accept bare LF in DATA as a line end instead of refusing it', default: 0, ...flag }),
  'smtpd.resolvehost': control.int({ description: '1: reverse-resolve clients (tcpserver -h); 0: do not (-H)', default: 0, ...flag }),
  'smtpd.authfaildelay': control.int({ description: 'milliseconds to wait before answering a failed AUTH', default: 2000, schema: { minimum: 0, maximum: 60000 } }),
  'smtpd.authfailures': control.int({ description: 'failed AUTH attempts before the connection is closed', default: 3, schema: { minimum: 1, maximum: 100 } }),
  'smtpd.stoptimeout': control.int({ description: 'seconds sessions may take to finish when the server stops', default: 30, schema: { minimum: 0, maximum: 3600 } }),
};

/** What a running smtpd plugin listens on, per server. */
export interface ListenerInfo {
  kind: ListenerKind;
  host: string;
  port: number;
}

interface Runtime {
  listeners: SmtpListener[];
}

const runtimes = new WeakMap<KernelHooks, Runtime>();

/** The addresses the smtpd plugin of a running server is bound to (useful with port 0). */
export function smtpdListeners(server: { hooks: KernelHooks }): ListenerInfo[] {
  const runtime = runtimes.get(server.hooks);
  if (!runtime) return [];
  return runtime.listeners.flatMap((l) => {
    const a = l.address();
    return a ? [{ kind: l.kind, host: a.address, port: a.port }] : [];
  });
}

export const smtpdPlugin = definePlugin({
  name: 'smtpd',
  version: '0.1.0',
  description: 'qmail-smtpd under tcpserver: SMTP, submission and SMTPS listeners',
  control: smtpdControl,
  requires: [Tokens.Queue],
  register(ctx) {
    const cache = new WeakMap<object, SmtpdSettings>();
    const settings = (): SmtpdSettings => {
      const config = ctx.config;
      let s = cache.get(config);
      if (!s) {
        s = settingsFrom(config as unknown as SmtpdConfig);
        cache.set(config, s);
      }
      return s;
    };
    let runtime: Runtime | undefined;
    let gate: TcpGate | undefined;

    ctx.hooks.start.tapPromise(ctx.name, async () => {
      let queue: Queue | undefined;
      const services: SessionServices = {
        hooks: ctx.hooks,
        queue: () => (queue ??= ctx.resolve(Tokens.Queue)),
        authenticator: ctx.resolveOptional(Tokens.Authenticator),
        clock: ctx.resolve(Tokens.Clock),
        log: ctx.log,
      };
      const resolver = ctx.resolveOptional(Tokens.Resolver);
      gate = new TcpGate({ settings, reverse: resolver ? (ip) => resolver.reverse(ip) : undefined, log: ctx.log });
      const current = settings();
      const wanted: Array<[ListenerKind, ListenAddress[]]> = [
        ['smtp', ctx.config['smtpd.listen']],
        ['submission', ctx.config['submission.listen']],
        ['smtps', ctx.config['smtps.listen']],
      ];
      if (ctx.config['smtps.listen'].length > 0 && !current.certificate) {
        throw new QuailError(ErrorCodes.CONFIG, 'control/smtps.listen: SMTPS needs control/servercert.pem (key and certificate)');
      }
      listening = listenConfig();
      runtime = { listeners: [] };
      runtimes.set(ctx.hooks, runtime);
      for (const [kind, addresses] of wanted) {
        for (const address of addresses) {
          const listener = new SmtpListener({
            kind,
            address,
            gate,
            certificate: current.certificate,
            log: ctx.log,
            session: (conn, ticket, k) => new SmtpSession(services, ticket.settings, k, conn),
          });
          const bound: AddressInfo = await listener.listen();
          runtime.listeners.push(listener);
          ctx.log.info({ kind, host: bound.address, port: bound.port }, `${kind} listening on ${bound.address}:${bound.port}`);
        }
      }
    });

    let listening = '';
    const listenConfig = () => JSON.stringify([ctx.config['smtpd.listen'], ctx.config['submission.listen'], ctx.config['smtps.listen']]);

    ctx.hooks.reload.tapPromise(ctx.name, async () => {
      const cert = settings().certificate;
      for (const listener of runtime?.listeners ?? []) listener.updateCertificate(cert);
      if (runtime && listenConfig() !== listening) {
        ctx.log.warn('smtpd.listen, submission.listen or smtps.listen changed: listen addresses change at the next start');
      }
    });

    ctx.hooks.stop.tapPromise(ctx.name, async () => {
      gate?.close();
      const deadline = settings().stopTimeoutMs;
      await Promise.all((runtime?.listeners ?? []).map((l) => l.stop(deadline)));
      runtime = undefined;
    });
  },
});
