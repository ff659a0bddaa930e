import { simpleParser } from 'mailparser';
import type { Readable } from 'node:stream';
import { headerMap, readHeaderSection, type MessageParser, type ParsedMessage } from './message-parser.js';

/**
 * The one file that knows quail parses MIME with mailparser. Header-only parsing
 * does not need it (see readHeaderSection); full parsing does.
 */
export class MailparserMessageParser implements MessageParser {
  headers(stream: Readable) {
    return readHeaderSection(stream);
  }

  async parse(stream: Readable): Promise<ParsedMessage> {
    const mail = await simpleParser(stream, { skipHtmlToText: true, skipTextToHtml: true, skipTextLinks: true });
    const lines = mail.headerLines.map((h) => {
      const colon = h.line.indexOf(':');
      return { name: h.key.toLowerCase(), value: (colon >= 0 ? h.line.slice(colon + 1) : '').replace(/\r?\n[ \t]+/g, ' ').trim() };
    });
    const parsed: ParsedMessage = {
      headers: headerMap(lines),
      attachments: mail.attachments.map((a) => ({
        contentType: a.contentType,
        size: a.size,
        content: a.content,
        ...(a.filename !== undefined && { filename: a.filename }),
      })),
    };
    if (mail.subject !== undefined) parsed.subject = mail.subject;
    if (mail.from?.text) parsed.from = mail.from.text;
    const to = Array.isArray(mail.to) ? mail.to.map((t) => t.text).join(', ') : mail.to?.text;
    if (to) parsed.to = to;
    if (mail.messageId !== undefined) parsed.messageId = mail.messageId;
    if (mail.date !== undefined) parsed.date = mail.date;
    if (mail.text !== undefined) parsed.text = mail.text;
    if (typeof mail.html === 'string') parsed.html = mail.html;
    return parsed;
  }
}
