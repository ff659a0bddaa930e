import { hostname } from 'node:os';
import { parseServerCertificate } from '../tls.js';
import { control, fromMe } from './spec.js';

const domainList = { schema: { items: { type: 'string', pattern: '^[^\\s@]*$' } } };
const positive = { schema: { minimum: 0 } };
const seconds = { schema: { minimum: 1 } };

/**
 * qmail's own control files with qmail's defaults (reference section 1.2), for
 * plugins to declare the ones they read. Two plugins that declare the same file
 * through this table agree on it by construction.
 */
export const qmailFiles = {
  me: control.string({ description: "this host's fully qualified name", default: () => hostname() }),
  badmailfrom: control.list({ description: 'envelope senders refused (address or @domain)' }),
  bouncefrom: control.string({ description: 'local part of bounce From:', default: 'MAILER-DAEMON' }),
  bouncehost: control.string({ description: 'host part of bounce From:', default: fromMe }),
  concurrencylocal: control.int({ description: 'simultaneous local deliveries', default: 10, schema: { minimum: 0, maximum: 1000 } }),
  concurrencyremote: control.int({ description: 'simultaneous remote deliveries', default: 20, schema: { minimum: 0, maximum: 1000 } }),
  databytes: control.int({ description: 'largest message accepted over SMTP (0: no limit)', default: 0, ...positive }),
  defaultdomain: control.string({ description: 'domain appended to host names without a dot', default: fromMe }),
  defaulthost: control.string({ description: 'host appended to header addresses without one', default: fromMe }),
  doublebouncehost: control.string({ description: 'host part of the double-bounce recipient', default: fromMe }),
  doublebounceto: control.string({ description: 'local part of the double-bounce recipient', default: 'postmaster' }),
  envnoathost: control.string({ description: 'domain appended to envelope recipients without @', default: fromMe }),
  helohost: control.string({ description: 'name sent in HELO/EHLO by remote delivery', default: fromMe }),
  idhost: control.string({ description: 'host part of generated Message-Id', default: fromMe }),
  localiphost: control.string({ description: 'replaces [ip] of this host in recipients', default: fromMe }),
  locals: control.list({ description: 'domains delivered locally', default: ({ me }) => [me], ...domainList }),
  morercpthosts: control.list({ description: 'more rcpthosts entries', ...domainList }),
  percenthack: control.list({ description: 'domains where user%host@domain becomes user@host', ...domainList }),
  plusdomain: control.string({ description: 'replaces a trailing + of a host name', default: fromMe }),
  queuelifetime: control.int({ description: 'seconds a message may stay queued', default: 604800, ...seconds }),
  rcpthosts: control.list({ description: 'domains accepted as recipients', default: ({ me }) => [me], ...domainList }),
  smtpgreeting: control.string({ description: 'text of the SMTP greeting', default: fromMe }),
  smtproutes: control.map({ description: 'artificial routes domain:relay[:port]' }),
  timeoutconnect: control.int({ description: 'seconds to wait for a remote connect', default: 60, ...seconds }),
  timeoutremote: control.int({ description: 'seconds to wait for each remote read/write', default: 1200, ...seconds }),
  timeoutsmtpd: control.int({ description: 'seconds to wait for each client read/write', default: 1200, ...seconds }),
  virtualdomains: control.map({ description: 'virtual users and domains key:prefix' }),
  concurrencyincoming: control.int({ description: 'simultaneous SMTP connections (tcpserver -c)', default: 40, schema: { minimum: 1, maximum: 100000 } }),
  defaultdelivery: control.string({ description: 'delivery for users without .qmail', default: './Maildir/' }),
  'servercert.pem': control.text({
    description: 'TLS private key and certificate chain in one PEM file; absent: no STARTTLS, STLS, SMTPS or POP3S',
    parse: parseServerCertificate,
  }),
};
