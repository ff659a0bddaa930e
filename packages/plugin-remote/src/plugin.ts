import { Tokens, control, definePlugin, qmailFiles, type Resolver } from '@quail/core';
import { ConfiguredResolver, parseDnsServers } from './dns-servers.js';
import { isOwnName, normaliseIp, ownAddresses, parseIpList } from './own-host.js';
import { RemoteDeliverer, type RemoteSettings } from './remote-deliverer.js';
import { SmtpRoutes } from './routes.js';
import { SessionPool } from './session-pool.js';
import { parseTlsDestinations } from './tls-policy.js';

const OWN_ADDRESSES_TTL_MS = 60_000;

const remoteControl = {
  me: qmailFiles.me,
  locals: qmailFiles.locals,
  helohost: qmailFiles.helohost,
  smtproutes: qmailFiles.smtproutes,
  timeoutconnect: qmailFiles.timeoutconnect,
  timeoutremote: qmailFiles.timeoutremote,
  concurrencyremote: qmailFiles.concurrencyremote,
  dnsservers: control.list({ description: 'DNS servers asked (ip, ip:port or [ipv6]:port); empty: the system resolver', parse: parseDnsServers }),
  tlsdestinations: control.map({ description: 'STARTTLS policy per domain: none, may, encrypt, verify[:cafile]', parse: parseTlsDestinations }),
  moreipme: control.list({ description: 'more addresses that are this host (loop detection)', parse: parseIpList }),
  notipme: control.list({ description: 'local addresses that are not this host (loop detection)', parse: parseIpList }),
  'remote.port': control.int({ description: 'SMTP port of MX destinations', default: 25, schema: { minimum: 1, maximum: 65535 } }),
  'remote.reuse': control.int({ description: 'messages one outgoing connection may carry (1: a connection per message)', default: 100, schema: { minimum: 1, maximum: 100000 } }),
  'remote.idle': control.int({ description: 'seconds an unused outgoing connection stays open', default: 5, schema: { minimum: 1, maximum: 3600 } }),
};

/**
 * plugin-remote: qmail-rspawn and qmail-remote. Delivers channel `remote`
 * recipients over SMTP (smtproutes, MX, STARTTLS, AUTH to smarthosts,
 * connection reuse), and provides the Resolver service from control/dnsservers.
 */
const plugin = definePlugin({
  name: 'remote',
  version: '0.1.0',
  description: 'outbound SMTP delivery (qmail-rspawn, qmail-remote)',
  control: remoteControl,
  provides: [Tokens.Resolver],
  register(ctx) {
    const resolver = new ConfiguredResolver(() => ctx.config.dnsservers ?? []);
    ctx.provide<Resolver>(Tokens.Resolver, resolver);

    let routes: { source: unknown; table: SmtpRoutes } | undefined;
    const currentRoutes = (): SmtpRoutes => {
      const source = ctx.config.smtproutes ?? {};
      if (routes?.source !== source) routes = { source, table: new SmtpRoutes(source) };
      return routes.table;
    };
    const reportRoutes = async () => {
      for (const problem of currentRoutes().problems) ctx.log.error(`${problem} (deliveries for it are deferred)`);
    };

    // the interfaces are read again when moreipme/notipme change and at most once a minute otherwise
    let own: { more: unknown; not: unknown; at: number; ips: Set<string> } | undefined;
    const ownIps = (): Set<string> => {
      const c = ctx.config;
      const now = Date.now();
      if (!own || own.more !== c.moreipme || own.not !== c.notipme || now - own.at > OWN_ADDRESSES_TTL_MS) {
        own = { more: c.moreipme, not: c.notipme, at: now, ips: ownAddresses(c.moreipme ?? [], c.notipme ?? []) };
      }
      return own.ips;
    };
    const settings = (): RemoteSettings => {
      const c = ctx.config;
      const own = ownIps();
      return {
        helo: c.helohost,
        port: c['remote.port'],
        connectTimeoutMs: c.timeoutconnect * 1000,
        replyTimeoutMs: c.timeoutremote * 1000,
        routes: currentRoutes(),
        tls: c.tlsdestinations ?? {},
        isOwnName: (name) => isOwnName(name, ctx.control.me, c.locals),
        isOwnIp: (ip) => own.has(normaliseIp(ip)),
      };
    };
    const pool = new SessionPool(() => ({
      maxMessages: ctx.config['remote.reuse'],
      idleMs: ctx.config['remote.idle'] * 1000,
      maxConnections: ctx.config.concurrencyremote,
    }));
    let deliverer: RemoteDeliverer | undefined;

    ctx.hooks.init.tapPromise(ctx.name, async () => {
      deliverer = new RemoteDeliverer({ settings, resolver: () => ctx.resolve<Resolver>(Tokens.Resolver), pool, log: ctx.log });
      await reportRoutes();
    });
    ctx.hooks.reload.tapPromise(ctx.name, reportRoutes);
    ctx.hooks.deliver.tapPromise(ctx.name, async (delivery) => {
      if (delivery.channel !== 'remote' || !deliverer) return undefined;
      return deliverer.deliver(delivery);
    });
    ctx.hooks.stop.tapPromise(ctx.name, () => pool.closeAll());
  },
});

export default plugin;
