import 'reflect-metadata';

export { splitAddress, domainSuffixes, matchesHostList, type EnvelopeAddress } from './address.js';
export { systemClock, ManualClock } from './clock.js';
export { ControlDirectory, type ControlEntry, type ControlSnapshot } from './control/loader.js';
export { qmailFiles } from './control/qmail-files.js';
export { control, fromMe, type ConfigOf, type ControlFileSpec, type ControlKind, type ControlSpecs, type DefaultContext, type Fail, type RawValue } from './control/spec.js';
export {
  deferral,
  deliveryKey,
  failure,
  reportPerRecipient,
  success,
  type BounceDecision,
  type BounceRequest,
  type Channel,
  type CleanInfo,
  type Delivery,
  type DeliveryRecipient,
  type DeliveryReport,
  type DeliveryResult,
  type Route,
  type RouteRequest,
} from './delivery.js';
export { ConfigError, ConfigErrors, ErrorCodes, QuailError, isTemporary, type ErrorCode } from './errors.js';
export { atomicWriteFile, DirectorySyncs, fsyncDir } from './fs.js';
export { Stage, createHooks, type AuthAttempt, type KernelHooks } from './hooks.js';
export { LoginThrottle, throttledAuthenticator, type LoginThrottleSettings } from './login-throttle.js';
export { DirectoryNames, ParsedFiles, settled, stampOf } from './file-stamps.js';
export { TLS_SERVER_OPTIONS, parseServerCertificate, type ServerCertificate } from './tls.js';
export { createLogger, formatPretty, type LogFormat, type LoggerOptions } from './logger.js';
export { Message, bufferSource, fileSource, type MessageSource } from './message.js';
export { headerMap, readHeaderSection, type MessageHeaders, type MessageParser, type ParsedAttachment, type ParsedMessage } from './message-parser.js';
export { Notes } from './notes.js';
export { definePlugin, isPlugin, type Plugin, type PluginContext, type PluginDefinition } from './plugin.js';
export { createDnsResolver } from './resolver.js';
export { QuailServer, createServer, importPlugin, tokenName, type ServerOptions, type ServerState } from './server.js';
export {
  Tokens,
  serviceToken,
  type AuthMechanism,
  type AuthOutcome,
  type Authenticator,
  type Clock,
  type Credentials,
  type DotQmailRequest,
  type DotQmailRunner,
  type Envelope,
  type Logger,
  type MailStore,
  type MailUser,
  type Mailbox,
  type MailboxMessage,
  type Queue,
  type QueueOrigin,
  type QueueReceipt,
  type QueueStat,
  type QueueWriter,
  type QueuedMessageInfo,
  type QueuedRecipient,
  type Quota,
  type RecipientState,
  type Resolver,
  type ServiceToken,
  type StoredMessage,
  type TimerHandle,
  type UserFlags,
  type UserStore,
} from './services.js';
export { Connection, Transaction, normaliseIp, type Protocol, type TlsInfo } from './session.js';
export {
  accept,
  defer,
  deny,
  disconnect,
  isVerdict,
  qmailText,
  verdictToPop3Reply,
  verdictToSmtpReply,
  type AcceptVerdict,
  type DeferVerdict,
  type DenyVerdict,
  type DisconnectVerdict,
  type EnhancedCode,
  type HookResult,
  type Reply,
  type Verdict,
} from './verdict.js';
