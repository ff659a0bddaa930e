import type { SecureContext } from 'node:tls';
import { definePlugin, ErrorCodes, QuailError, serviceToken, Tokens, type ConfigOf } from '@quail/core';
import { secureContextFor } from './certificate.js';
import { pop3Control, type ListenAddress } from './control.js';
import { LoginThrottle } from './login-throttle.js';
import { MailboxLocks } from './mailbox-lock.js';
import { Pop3Server } from './server.js';

/** One open listener. */
export interface BoundListener {
  protocol: 'pop3' | 'pop3s';
  address: string;
  port: number;
}

/** The plugin's listeners, for tests, benchmarks and status tools (ports chosen with `:0` become known here). */
export interface Pop3Listeners {
  bound(): BoundListener[];
  /** Connections open now. */
  connections(): number;
}

export const Pop3ListenersToken = serviceToken<Pop3Listeners>('Pop3Listeners');

type Config = ConfigOf<typeof pop3Control>;

/** qmail-popup + checkpassword + qmail-pop3d: POP3 and POP3S over the MailStore, logins through the Authenticator. */
export const pop3Plugin = definePlugin({
  name: 'pop3',
  version: '0.1.0',
  description: 'POP3 server (RFC 1939, CAPA, STLS, POP3S, SASL PLAIN/LOGIN/CRAM-MD5, APOP)',
  control: pop3Control,
  provides: [Pop3ListenersToken],
  requires: [Tokens.Authenticator, Tokens.MailStore],
  register(ctx) {
    let server: Pop3Server | undefined;
    let secureContext: SecureContext | undefined;
    const bound: BoundListener[] = [];
    const config = () => ctx.config as Config;
    const loadCertificate = () => {
      const certificate = config()['servercert.pem'];
      secureContext = certificate ? secureContextFor(certificate) : undefined;
    };

    ctx.provide(Pop3ListenersToken, { bound: () => [...bound], connections: () => server?.connections ?? 0 });

    ctx.hooks.start.tapPromise(ctx.name, async () => {
      loadCertificate();
      const clock = ctx.resolve(Tokens.Clock);
      server = new Pop3Server({
        hooks: ctx.hooks,
        log: ctx.log,
        services: {
          hooks: ctx.hooks,
          authenticator: ctx.resolve(Tokens.Authenticator),
          mailStore: ctx.resolve(Tokens.MailStore),
          userStore: ctx.resolveOptional(Tokens.UserStore),
          locks: new MailboxLocks(),
          throttle: new LoginThrottle(clock),
          clock,
          log: ctx.log,
        },
        settings: () => ({
          hostname: ctx.control.me,
          secureContext,
          idleTimeoutMs: config().timeoutpop3d * 1000,
          failDelayMs: config()['pop3d.faildelay'] * 1000,
          plaintext: config()['pop3d.plaintext'] ?? [],
        }),
      });
      const secureListeners: readonly ListenAddress[] = config()['pop3s.listen'];
      if (secureListeners.length > 0 && !secureContext) {
        throw new QuailError(ErrorCodes.CONFIG, 'control/pop3s.listen: POP3S needs a certificate in control/servercert.pem');
      }
      for (const address of config()['pop3d.listen']) {
        const info = await server.listen(address, false);
        bound.push({ protocol: 'pop3', address: info.address, port: info.port });
      }
      for (const address of secureListeners) {
        const info = await server.listen(address, true);
        bound.push({ protocol: 'pop3s', address: info.address, port: info.port });
      }
    });

    ctx.hooks.reload.tapPromise(ctx.name, async () => {
      try {
        loadCertificate();
      } catch (err) {
        ctx.log.error({ err }, `keeping the old TLS certificate: ${(err as Error).message}`);
      }
    });

    ctx.hooks.stop.tapPromise(ctx.name, async () => {
      const running = server;
      server = undefined;
      bound.length = 0;
      await running?.close();
    });
  },
});
