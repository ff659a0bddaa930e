export { TestServer, startTestServer, defaultPlugins, TEST_HOST, type SendOptions, type TestServerOptions } from './test-server.js';
export { readMaildir, type DeliveredMessage } from './maildir-reader.js';
export { MAX_REPLY, SmtpDialog, type DialogOptions, type SmtpReply } from './smtp-dialog.js';
export { SmtpPeer, type PeerMessage, type SmtpPeerOptions } from './smtp-peer.js';
export { startLoopbackDns, type LoopbackDns, type ZoneEntry } from './loopback-dns.js';
export { scaffoldPlugin, type ScaffoldOptions, type ScaffoldResult } from './scaffold.js';
export { ManualClock, tempRoot } from '@quail/core/testing';
