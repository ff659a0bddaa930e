import type { Readable, Transform } from 'node:stream';
import type { TlsInfo } from '@quail/core';

/**
 * What a POP3 session writes to. The socket listener implements it over TCP and
 * TLS; tests may drive a session over any implementation.
 */
export interface Pop3Transport {
  /** True once the connection is encrypted (POP3S, or after STLS). */
  readonly secure: boolean;
  /** Writes one response line; the CRLF is added here. */
  send(line: string): void;
  /**
   * Writes a multi-line response body: `source` piped through `transforms`,
   * honouring backpressure. Rejects when the source fails or the client goes away.
   */
  sendStream(source: Readable, ...transforms: Transform[]): Promise<void>;
  /**
   * Writes a whole response prepared in memory (status line, body, terminator)
   * at once. Resolves when the transport can take more (backpressure); rejects
   * when the client goes away first. Optional: without it the session passes
   * the response through `sendStream`.
   */
  sendWhole?(response: Buffer): Promise<void>;
  /** Upgrades to TLS (STLS). Input buffered before the upgrade is dropped. */
  startTls(): Promise<TlsInfo>;
  /** Flushes what was written and closes the connection. */
  close(): void;
}
