/** Decodes one base64 line of a SASL exchange; undefined when it is not valid base64 (RFC 4648, padding required). */
export function decodeBase64(text: string): Buffer | undefined {
  if (text === '=') return Buffer.alloc(0);
  if (text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return undefined;
  return Buffer.from(text, 'base64');
}

export function encodeBase64(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64');
}

export interface PlainCredentials {
  authzid: string;
  username: string;
  password: string;
}

/** RFC 4616 PLAIN: `authzid NUL authcid NUL passwd`; undefined when malformed. */
export function parsePlain(data: Buffer): PlainCredentials | undefined {
  const first = data.indexOf(0);
  const second = first < 0 ? -1 : data.indexOf(0, first + 1);
  if (first < 0 || second < 0 || data.indexOf(0, second + 1) >= 0) return undefined;
  const username = data.subarray(first + 1, second).toString('utf8');
  const password = data.subarray(second + 1).toString('utf8');
  if (username === '' || password === '') return undefined;
  return { authzid: data.subarray(0, first).toString('utf8'), username, password };
}

/** CRAM-MD5 response `user SP hex-digest`; undefined when malformed. */
export function parseCramResponse(data: Buffer): { username: string; digest: string } | undefined {
  const text = data.toString('utf8');
  const space = text.lastIndexOf(' ');
  if (space <= 0) return undefined;
  const digest = text.slice(space + 1).toLowerCase();
  if (!/^[0-9a-f]{32}$/.test(digest)) return undefined;
  return { username: text.slice(0, space), digest };
}
