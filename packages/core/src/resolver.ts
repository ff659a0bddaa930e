import { promises as dns } from 'node:dns';
import type { Resolver } from './services.js';

/** DNS through node's resolver; `servers` empty means the system's. */
export function createDnsResolver(servers: string[] = [], timeoutMs = 5000): Resolver {
  const r = new dns.Resolver({ timeout: timeoutMs, tries: 2 });
  if (servers.length > 0) r.setServers(servers);
  return {
    resolveMx: (d) => r.resolveMx(d),
    resolve4: (h) => r.resolve4(h),
    resolve6: (h) => r.resolve6(h),
    resolveTxt: (h) => r.resolveTxt(h),
    reverse: (ip) => r.reverse(ip),
  };
}
