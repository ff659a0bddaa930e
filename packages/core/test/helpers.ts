import { Connection, Transaction, createLogger, splitAddress } from '@quail/core';

export function connection(remoteAddress = '127.0.0.1'): Connection {
  return new Connection({ protocol: 'smtp', remoteAddress, remotePort: 40000, localAddress: '127.0.0.1', localPort: 25 });
}

export function transaction(): Transaction {
  const tx = new Transaction(connection());
  tx.sender = splitAddress('a@example.test');
  return tx;
}

/** A logger that keeps its records, to check what was logged. */
export function recordingLogger() {
  const records: Array<Record<string, unknown>> = [];
  const logger = createLogger({ format: 'json', level: 'debug', write: (line) => records.push(JSON.parse(line)) });
  return { logger, records };
}
