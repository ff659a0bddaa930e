export { bufferSource, Message } from '@quail/core';
export { MailparserMessageParser } from '../src/mailparser-parser.js';
