import { readdir, readFile, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { atomicWriteFile } from '@quail/core';

export interface MaildirUsage {
  bytes: number;
  messages: number;
}

/**
 * What a Maildir++ quota counts: messages in new/ and cur/ of the maildir and
 * of its folders except `.Trash`, without those flagged T (trashed). Sizes come
 * from the `,S=<n>` part of the name, else from stat.
 */
export async function maildirUsage(maildir: string): Promise<MaildirUsage> {
  const usage: MaildirUsage = { bytes: 0, messages: 0 };
  const roots = [maildir];
  for (const entry of await readdir(maildir, { withFileTypes: true }).catch(() => [])) {
    if (entry.isDirectory() && entry.name.startsWith('.') && !['.', '..', '.Trash'].includes(entry.name)) roots.push(join(maildir, entry.name));
  }
  for (const root of roots) {
    for (const sub of ['new', 'cur']) {
      const dir = join(root, sub);
      for (const name of await readdir(dir).catch(() => [] as string[])) {
        if (name.startsWith('.')) continue;
        const info = name.includes(':2,') ? name.slice(name.indexOf(':2,') + 3) : '';
        if (info.includes('T')) continue;
        const sized = /,S=(\d+)/.exec(name.split(':')[0]!);
        const size = sized ? Number(sized[1]) : await stat(join(dir, name)).then((s) => s.size, () => undefined);
        if (size === undefined) continue;
        usage.bytes += size;
        usage.messages += 1;
      }
    }
  }
  return usage;
}

/**
 * vsetuserquota's maildirsize update: the first line becomes the new quota
 * definition; without a quota the file goes (Maildir++ has none then). A
 * maildir without the file is left alone: the next delivery builds it.
 */
export async function updateMaildirSize(maildir: string, definition: string | undefined): Promise<void> {
  const path = join(maildir, 'maildirsize');
  let text: string;
  try {
    text = await readFile(path, 'latin1');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (definition === undefined) {
    await unlink(path);
    return;
  }
  const rest = text.indexOf('\n') >= 0 ? text.slice(text.indexOf('\n') + 1) : '';
  await atomicWriteFile(path, Buffer.from(`${definition}\n${rest}`, 'latin1'), 0o600);
}
