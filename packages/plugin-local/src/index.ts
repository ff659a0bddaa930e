import { localPlugin } from './plugin.js';

export default localPlugin;
export { DotQmailFileRunner, type RunRequest, type RunnerOptions } from './dot-qmail-runner.js';
export { LocalDelivery, dotQmailCandidates } from './local-delivery.js';
export { parseDotQmail, DotQmailSyntaxError, type Instruction, type DotQmailContents } from './dot-qmail-file.js';
export { parseUsersAssign, findOwner, UsersAssign, AssignSyntaxError, type LocalOwner } from './users-assign.js';
export { hostileLocalPart, safeExt } from './local-part.js';
export { appendToMbox, MboxError } from './mbox.js';
export { FromQuoting } from './from-quoting.js';
export { mboxFromLine, returnPathLine, deliveredToLine, quoteAddress } from './headers.js';
export { programEnvironment } from './environment.js';
