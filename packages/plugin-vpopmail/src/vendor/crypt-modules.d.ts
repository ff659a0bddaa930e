declare module 'apache-md5' {
  /** MD5-crypt: `$1$` when the salt starts with `$1$`, Apache's `$apr1$` otherwise. Strings are treated as bytes (latin1). */
  function md5(password: string, salt?: string): string;
  export default md5;
}

declare module 'unix-crypt-td-js' {
  /** Traditional DES crypt(3): 2-character salt, first 8 bytes of the password. */
  function crypt(password: string | number[], salt: string | number[]): string;
  export default crypt;
}
