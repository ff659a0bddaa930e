import { execFileSync } from 'node:child_process';

/** Runs Python 3 (deprecation warnings of the crypt module silenced) and returns its stdout lines. */
export function python(code: string, ...args: string[]): string[] {
  return execFileSync('python3', ['-W', 'ignore', '-c', code, ...args], { encoding: 'utf8' }).trim().split('\n');
}

export function openssl(...args: string[]): string {
  return execFileSync('openssl', args, { encoding: 'utf8' }).trim();
}

/** Python's crypt(3) of a password with a given setting (salt, or a full hash to check against). */
export function pythonCrypt(password: string, setting: string): string {
  return python('import crypt, sys; print(crypt.crypt(sys.argv[1], sys.argv[2]))', password, setting)[0]!;
}
