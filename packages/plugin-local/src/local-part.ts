/**
 * Why a local part can never name a delivery, or undefined when it is fine.
 * Refused: `/`, `..`, NUL, CR, LF (and other control bytes), a leading `.`,
 * so that no address can reach a file outside the owner's directory.
 */
export function hostileLocalPart(local: string): string | undefined {
  if (local === '') return 'empty local part';
  if (local.includes('/')) return 'local part contains /';
  if (local.includes('..')) return 'local part contains ..';
  if (local.startsWith('.')) return 'local part starts with .';
  if (/[\0-\x1f\x7f]/.test(local)) return 'local part contains a control character';
  return undefined;
}

/** qmail-local's "safe ext": lower case, every `.` written as `:`. */
export function safeExt(ext: string): string {
  return ext.toLowerCase().replace(/\./g, ':');
}
