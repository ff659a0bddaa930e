import type { ServerCertificate } from '@quail/core';
import type { TcpRules } from './tcprules.js';

/** The three services a listener can offer. */
export type ListenerKind = 'smtp' | 'submission' | 'smtps';

/**
 * Everything one SMTP session needs from the control files, taken once when the
 * connection starts (qmail-smtpd reads its controls per connection, so a reload
 * applies to the next connection).
 */
export interface SmtpdSettings {
  me: string;
  greeting: string;
  envnoathost: string;
  localiphost: string;
  /** 0 = unlimited; `DATABYTES` from tcprules overrides it. */
  databytes: number;
  maxrcpt: number;
  rcpthosts: ReadonlySet<string>;
  badmailfrom: ReadonlySet<string>;
  strict: boolean;
  allowBareLf: boolean;
  timeoutMs: number;
  authFailDelayMs: number;
  maxAuthFailures: number;
  certificate?: ServerCertificate;
  rules: TcpRules;
  concurrency: number;
  perIp: number;
  resolveHost: boolean;
  stopTimeoutMs: number;
}

/** The plugin's config as read from control/ (see plugin.ts for each file). */
export interface SmtpdConfig {
  me: string;
  smtpgreeting: string;
  envnoathost: string;
  localiphost: string;
  databytes: number;
  maxrcpt: number;
  rcpthosts: string[];
  morercpthosts: string[];
  badmailfrom: string[];
  'smtpd.strict': number;
  'smtpd.allowbarelf': number;
  timeoutsmtpd: number;
  'smtpd.authfaildelay': number;
  'smtpd.authfailures': number;
  'servercert.pem'?: ServerCertificate | undefined;
  'tcp.smtp': TcpRules;
  concurrencyincoming: number;
  'smtpd.maxperip': number;
  'smtpd.resolvehost': number;
  'smtpd.stoptimeout': number;
}

export function settingsFrom(config: SmtpdConfig): SmtpdSettings {
  const lower = (list: string[]) => new Set(list.map((d) => d.toLowerCase()));
  // qmail ignores morercpthosts when rcpthosts itself is absent; rcpthosts always has a value here (default: me)
  const rcpthosts = lower([...config.rcpthosts, ...config.morercpthosts]);
  return {
    me: config.me,
    greeting: config.smtpgreeting,
    envnoathost: config.envnoathost,
    localiphost: config.localiphost,
    databytes: config.databytes,
    maxrcpt: config.maxrcpt,
    rcpthosts,
    badmailfrom: lower(config.badmailfrom),
    strict: config['smtpd.strict'] !== 0,
    allowBareLf: config['smtpd.allowbarelf'] !== 0,
    timeoutMs: config.timeoutsmtpd * 1000,
    authFailDelayMs: config['smtpd.authfaildelay'],
    maxAuthFailures: config['smtpd.authfailures'],
    ...(config['servercert.pem'] && { certificate: config['servercert.pem'] }),
    rules: config['tcp.smtp'],
    concurrency: config.concurrencyincoming,
    perIp: config['smtpd.maxperip'],
    resolveHost: config['smtpd.resolvehost'] !== 0,
    stopTimeoutMs: config['smtpd.stoptimeout'] * 1000,
  };
}
