export { default } from './plugin.js';
export { ConfiguredResolver, parseDnsServers } from './dns-servers.js';
export { findDestinations, type Candidate, type Destinations, type DestinationOptions } from './destinations.js';
export { RemoteDeliverer, transactionResults, type RemoteSettings } from './remote-deliverer.js';
export { SmtpRoutes, parseRouteValue, type RouteCredentials, type RouteLookup, type SmtpRoute } from './routes.js';
export { SessionPool, type PoolLimits } from './session-pool.js';
export { SmtpSession, SessionOpenError, type SessionOptions, type TransactionLog } from './smtp-session.js';
export { parseTlsDestinations, tlsPolicyFor, type TlsLevel, type TlsPolicy } from './tls-policy.js';
export { Texts } from './texts.js';
