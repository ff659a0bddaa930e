import { pop3Plugin } from './plugin.js';

export default pop3Plugin;
export { Pop3ListenersToken, type BoundListener, type Pop3Listeners } from './plugin.js';
export { Pop3Session, type Pop3State, type SessionServices, type SessionSettings } from './session.js';
export type { Pop3Transport } from './transport.js';
export { Pop3Server, plaintextAllowed, MAX_COMMAND_LENGTH, MAX_BAD_COMMANDS, MAX_AUTH_FAILURES, type ListenerSettings } from './server.js';
export { SocketTransport } from './socket-transport.js';
export { DotStuffTransform } from './dot-stuff.js';
export { LineReader, type LineEvent } from './line-reader.js';
export { parseCommand, parseMessageNumber, type Pop3Command } from './command.js';
export { Maildrop, uidlOf, type DropMessage } from './maildrop.js';
export { MailboxLocks, LOCK_FILE, type LockHandle } from './mailbox-lock.js';
export { LoginThrottle } from './login-throttle.js';
export { parseListenLine, parsePlaintextRule, type ListenAddress, type PlaintextRule } from './control.js';
export { secureContextFor } from './certificate.js';
