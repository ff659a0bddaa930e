import { isIP } from 'node:net';
import type { Fail } from '@quail/core';

/** What a tcprules rule says about a connection. */
export interface RuleDecision {
  action: 'allow' | 'deny';
  /** Variables set by the rule (`RELAYCLIENT`, `DATABYTES`, `GREETDELAY` ...). */
  env: Record<string, string>;
  /** The address part of the rule that matched, `undefined` when no rule matched. */
  key?: string;
}

/** Who is connecting, as tcpserver knows it (`TCPREMOTEIP`, `TCPREMOTEHOST`, `TCPREMOTEINFO`). */
export interface RulePeer {
  ip: string;
  host?: string;
  info?: string;
}

/** Most addresses one rule line may expand to through ranges (`1.2.3.1-50`). */
const MAX_EXPANSION = 65536;

/**
 * tcprules' text format (reference 10.5), compiled once per (re)load: one rule per
 * line, `address:instruction[,VAR=<d>value<d>]...`, first match in tcpserver's
 * lookup order wins.
 */
export class TcpRules {
  readonly #rules = new Map<string, RuleDecision>();

  /** Parses the meaningful lines of a rules file; `fail(index, reason)` reports the line at fault. */
  static parse(lines: readonly string[], fail: Fail): TcpRules {
    const rules = new TcpRules();
    lines.forEach((line, index) => {
      const parsed = parseRule(line, (reason) => fail(index, reason));
      for (const key of parsed.keys) {
        // as in a cdb built by tcprules, the first line of a key is the one found
        if (!rules.#rules.has(key)) rules.#rules.set(key, { action: parsed.action, env: parsed.env, key });
      }
    });
    return rules;
  }

  get size(): number {
    return this.#rules.size;
  }

  /** tcpserver's lookup order; no match means allow with no variables. */
  match(peer: RulePeer): RuleDecision {
    if (this.#rules.size === 0) return { action: 'allow', env: {} };
    for (const key of lookupKeys(peer)) {
      const rule = this.#rules.get(key);
      if (rule) return { action: rule.action, env: { ...rule.env }, key };
    }
    return { action: 'allow', env: {} };
  }
}

/** The keys tried for a connection, in tcpserver's order (reference 10.5). */
export function lookupKeys(peer: RulePeer): string[] {
  const keys: string[] = [];
  const ip = peer.ip.toLowerCase();
  const host = peer.host?.toLowerCase();
  if (peer.info) {
    keys.push(`${peer.info}@${ip}`);
    if (host) keys.push(`${peer.info}@=${host}`);
  }
  keys.push(ip);
  if (host) keys.push(`=${host}`);
  if (isIP(ip) === 4) {
    const parts = ip.split('.');
    for (let n = parts.length - 1; n >= 1; n--) keys.push(`${parts.slice(0, n).join('.')}.`);
  } else if (isIP(ip) === 6) {
    for (let i = ip.lastIndexOf(':', ip.length - 2); i > 0; i = ip.lastIndexOf(':', i - 1)) keys.push(ip.slice(0, i + 1));
  }
  if (host) {
    for (let i = host.indexOf('.'); i >= 0; i = host.indexOf('.', i + 1)) keys.push(`=${host.slice(i)}`);
    keys.push('=');
  }
  keys.push('');
  return keys;
}

interface ParsedRule {
  keys: string[];
  action: 'allow' | 'deny';
  env: Record<string, string>;
}

function parseRule(line: string, fail: (reason: string) => never): ParsedRule {
  const colon = line.indexOf(':', line.startsWith('=') ? 0 : addressEnd(line));
  if (colon < 0) fail(`expected address:instruction, got "${clip(line)}"`);
  const address = line.slice(0, colon);
  const rest = line.slice(colon + 1);
  const comma = rest.indexOf(',');
  const instruction = comma < 0 ? rest : rest.slice(0, comma);
  if (instruction !== 'allow' && instruction !== 'deny') fail(`instruction must be allow or deny, got "${clip(instruction)}"`);
  const env = comma < 0 ? {} : parseVariables(rest.slice(comma + 1), fail);
  return { keys: expandAddress(address, fail), action: instruction, env };
}

/**
 * Where the address part ends. IPv6 addresses contain colons, so for them the
 * instruction starts after the last colon that is followed by allow/deny.
 */
function addressEnd(line: string): number {
  const m = /:(allow|deny)(,|$)/.exec(line);
  return m ? m.index : 0;
}

/** `VAR=<d>value<d>` settings separated by commas; any character may be the delimiter. */
function parseVariables(text: string, fail: (reason: string) => never): Record<string, string> {
  const env: Record<string, string> = {};
  let i = 0;
  while (i < text.length) {
    const eq = text.indexOf('=', i);
    if (eq < 0) fail(`expected VAR="value", got "${clip(text.slice(i))}"`);
    const name = text.slice(i, eq);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) fail(`bad variable name "${clip(name)}"`);
    const delimiter = text[eq + 1];
    if (delimiter === undefined) fail(`variable ${name} has no value (write ${name}="")`);
    const close = text.indexOf(delimiter, eq + 2);
    if (close < 0) fail(`variable ${name}: missing closing ${delimiter}`);
    const value = text.slice(eq + 2, close);
    if (/[\r\n\0]/.test(value)) fail(`variable ${name}: control characters are not allowed`);
    env[name] = value;
    i = close + 1;
    if (i < text.length) {
      if (text[i] !== ',') fail(`expected "," after the value of ${name}, got "${clip(text.slice(i))}"`);
      i++;
    }
  }
  return env;
}

/** Address part of a rule: IPv4 (with `a-b` ranges in any component), IPv6, `=host`, `info@...`, or empty. */
function expandAddress(address: string, fail: (reason: string) => never): string[] {
  if (/[\s\0]/.test(address)) fail(`address "${clip(address)}" contains blanks`);
  const at = address.lastIndexOf('@');
  const info = at < 0 ? '' : address.slice(0, at + 1);
  const where = (at < 0 ? address : address.slice(at + 1)).toLowerCase();
  if (where === '' || where.startsWith('=')) {
    if (where.length > 1 && !/^=\.?[a-z0-9_.-]+$/.test(where)) fail(`bad host name "${clip(where)}"`);
    return [info + where];
  }
  if (where.includes(':')) {
    if (!/^[0-9a-f:.]+$/.test(where)) fail(`bad IPv6 address "${clip(where)}"`);
    return [info + where];
  }
  if (!/^[0-9.-]+$/.test(where)) fail(`bad address "${clip(where)}" (expected a.b.c.d, a prefix ending in a dot, or =host)`);
  const trailingDot = where.endsWith('.');
  const parts = (trailingDot ? where.slice(0, -1) : where).split('.');
  if (parts.length > 4 || (trailingDot && parts.length > 3) || (!trailingDot && parts.length !== 4)) {
    fail(`bad address "${clip(where)}" (a full a.b.c.d or a prefix ending in a dot)`);
  }
  let expanded = [''];
  for (const [n, part] of parts.entries()) {
    const range = /^(\d{1,3})(?:-(\d{1,3}))?$/.exec(part);
    if (!range) fail(`bad address component "${clip(part)}" in "${clip(where)}"`);
    const low = Number(range[1]);
    const high = range[2] === undefined ? low : Number(range[2]);
    if (low > 255 || high > 255 || high < low) fail(`bad range "${part}" in "${clip(where)}"`);
    if (expanded.length * (high - low + 1) > MAX_EXPANSION) fail(`"${clip(where)}" expands to more than ${MAX_EXPANSION} addresses`);
    const next: string[] = [];
    for (const prefix of expanded) for (let v = low; v <= high; v++) next.push(n === 0 ? String(v) : `${prefix}.${v}`);
    expanded = next;
  }
  return expanded.map((a) => info + a + (trailingDot ? '.' : ''));
}

function clip(text: string, max = 60): string {
  return text.length > max ? `${text.slice(0, max)}...` : text;
}
