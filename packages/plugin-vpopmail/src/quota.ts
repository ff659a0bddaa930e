import type { Quota } from '@quail/core';
import { invalid, shown } from './errors.js';

export const NOQUOTA = 'NOQUOTA';

/**
 * vpasswd field 7 as a Quota: `NOQUOTA` (or empty) is none; Maildir++ `<bytes>S`,
 * `<count>C`, `<bytes>S,<count>C`; an old style plain number is bytes. A field
 * that is none of these counts as no quota (vpopmail's atol would read 0 too).
 */
export function quotaFromField(field: string): Quota | undefined {
  const text = field.trim();
  if (text === '' || text.toUpperCase() === NOQUOTA) return undefined;
  if (/^\d+$/.test(text)) return positive({ bytes: Number(text) });
  const quota: Quota = {};
  for (const part of text.split(',')) {
    const m = /^(\d+)([SC])$/i.exec(part.trim());
    if (!m) return undefined;
    if (m[2]!.toUpperCase() === 'S') quota.bytes = Number(m[1]);
    else quota.messages = Number(m[1]);
  }
  return positive(quota);
}

function positive(q: Quota): Quota | undefined {
  const out: Quota = {};
  if (q.bytes !== undefined && q.bytes > 0) out.bytes = q.bytes;
  if (q.messages !== undefined && q.messages > 0) out.messages = q.messages;
  return out.bytes === undefined && out.messages === undefined ? undefined : out;
}

const UNITS: Record<string, number> = { '': 1, K: 1024, KB: 1024, M: 1024 ** 2, MB: 1024 ** 2, G: 1024 ** 3, GB: 1024 ** 3 };

/**
 * vsetuserquota's normalisation: `NOQUOTA` stays; `10M`/`10MB` → `10485760S`,
 * `500K` → `512000S`, `1000000` → `1000000S`; `5000000S,1000C` and `1000C` kept.
 */
export function normaliseQuota(input: string): string {
  const text = input.trim().toUpperCase();
  if (text === NOQUOTA) return NOQUOTA;
  if (text.length > 20) throw invalid(`Invalid quota: ${shown(input)}`);
  const plain = /^(\d+)(K|KB|M|MB|G|GB)?$/.exec(text);
  if (plain) return `${checkedBytes(Number(plain[1]) * UNITS[plain[2] ?? '']!, input)}S`;
  const parts = text.split(',');
  const bytes = parts.map((p) => /^(\d+)S$/.exec(p)).filter(Boolean);
  const count = parts.map((p) => /^(\d+)C$/.exec(p)).filter(Boolean);
  if (bytes.length + count.length !== parts.length || bytes.length > 1 || count.length > 1) {
    throw invalid(`Invalid quota: ${shown(input)} (use NOQUOTA, bytes, 10M, 500K, <n>S, <n>C or <n>S,<n>C)`);
  }
  const out: string[] = [];
  if (bytes[0]) out.push(`${checkedBytes(Number(bytes[0][1]), input)}S`);
  if (count[0]) out.push(`${checkedBytes(Number(count[0][1]), input)}C`);
  return out.join(',');
}

function checkedBytes(n: number, input: string): number {
  if (!Number.isSafeInteger(n) || n <= 0) throw invalid(`Invalid quota: ${shown(input)}`);
  return n;
}

/** Percentage of the quota in use, the larger of bytes and messages; undefined without a quota. */
export function usagePercent(quota: Quota | undefined, use: { bytes: number; messages: number }): number | undefined {
  if (!quota) return undefined;
  const parts: number[] = [];
  if (quota.bytes) parts.push((use.bytes * 100) / quota.bytes);
  if (quota.messages) parts.push((use.messages * 100) / quota.messages);
  return Math.floor(Math.max(0, ...parts));
}
