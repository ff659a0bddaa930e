/**
 * Where a hash worker loads the three hashing libraries from: file URLs
 * resolved from this module, so that they are the package's own dependencies
 * whether it runs from its TypeScript sources (vitest) or from dist.
 */
export interface HashLibraries {
  /** `unixcrypt` (SHA-crypt, `$5$` / `$6$`); an ES module only, so it is loaded with import(). */
  sha: string;
  /** `apache-md5` (MD5-crypt, `$1$`). */
  md5: string;
  /** `unix-crypt-td-js` (traditional DES crypt). */
  des: string;
}

export function hashLibraries(): HashLibraries {
  return {
    sha: import.meta.resolve('unixcrypt'),
    md5: import.meta.resolve('apache-md5'),
    des: import.meta.resolve('unix-crypt-td-js'),
  };
}

/**
 * The worker's program, plain JavaScript run with `new Worker(code, { eval: true })`.
 * Being a string it needs no file next to the compiled module and runs the
 * same under vitest (which never compiles this package) and from dist. It
 * uses import() only, never require(), so that it is valid both as a script
 * and as a module (workers inherit flags such as `--input-type=module`). It
 * loads the libraries named in workerData, says `{ ready: true }` (or
 * `{ failed }` when a library cannot be loaded), then answers each
 * `{ id, job }` (a CryptJob) with `{ id, value }`, value null when the
 * library refuses the setting. The comparison with the stored hash is made
 * by the caller, in constant time.
 */
export const HASH_WORKER_SOURCE = `
'use strict';
import('node:worker_threads').then(({ parentPort, workerData }) =>
  Promise.all([import(workerData.sha), import(workerData.md5), import(workerData.des)]).then(
    ([sha, md5, des]) => {
      const lib = { sha: sha.encrypt, md5: md5.default, des: des.default };
      if (typeof lib.sha !== 'function' || typeof lib.md5 !== 'function' || typeof lib.des !== 'function') {
        parentPort.postMessage({ failed: 'a hashing library has an unexpected shape' });
        return;
      }
      parentPort.on('message', ({ id, job }) => {
        let value = null;
        try {
          value = job.kind === 'sha' ? lib.sha(job.key, job.setting) : lib[job.kind](job.key, job.salt);
        } catch {
          value = null;
        }
        parentPort.postMessage({ id, value: typeof value === 'string' ? value : null });
      });
      parentPort.postMessage({ ready: true });
    },
    (err) => parentPort.postMessage({ failed: String((err && err.message) || err) }),
  ),
);
`;
