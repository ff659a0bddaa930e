import type { AddressInfo } from 'node:net';
import dns2 from 'dns2';

/** What one name answers. A name missing from the zone is NXDOMAIN. */
export interface ZoneEntry {
  mx?: Array<[preference: number, exchange: string]>;
  a?: string[];
  aaaa?: string[];
  txt?: string[];
  rcode?: 'NXDOMAIN' | 'SERVFAIL';
}

export interface LoopbackDns {
  /** `127.0.0.1:port`, as control/dnsservers takes it. */
  address: string;
  /** Every question asked, as `name/TYPE` (`example.org/MX`), oldest first. */
  queries: string[];
  close(): Promise<void>;
}

const TYPE_NAMES: Record<number, string> = { 1: 'A', 15: 'MX', 16: 'TXT', 28: 'AAAA' };

/**
 * A real DNS server (UDP on 127.0.0.1, an ephemeral port) answering from a
 * table, for tests of anything that resolves names: point control/dnsservers
 * at `address` and read `queries` to see what was asked.
 */
export async function startLoopbackDns(zone: Record<string, ZoneEntry>): Promise<LoopbackDns> {
  const { Packet } = dns2;
  const queries: string[] = [];
  const server = dns2.createServer({
    udp: true,
    handle: (request, send) => {
      const response = Packet.createResponseFromRequest(request);
      const question = request.questions[0]!;
      const name = question.name.toLowerCase();
      queries.push(`${name}/${TYPE_NAMES[question.type] ?? question.type}`);
      const entry = zone[name];
      if (!entry) response.header.rcode = Packet.RCODE.NXDOMAIN;
      else if (entry.rcode) response.header.rcode = Packet.RCODE[entry.rcode];
      else {
        // dns2 encodes plain record objects (as its README shows); its typings ask for a toBuffer it never calls.
        const answers = response.answers as unknown as Array<Record<string, unknown>>;
        const base = { name: question.name, class: Packet.CLASS.IN, ttl: 60 };
        if (question.type === Packet.TYPE.MX) for (const [priority, exchange] of entry.mx ?? []) answers.push({ ...base, type: Packet.TYPE.MX, priority, exchange });
        if (question.type === Packet.TYPE.A) for (const address of entry.a ?? []) answers.push({ ...base, type: Packet.TYPE.A, address });
        if (question.type === Packet.TYPE.AAAA) for (const address of entry.aaaa ?? []) answers.push({ ...base, type: Packet.TYPE.AAAA, address });
        if (question.type === Packet.TYPE.TXT) for (const data of entry.txt ?? []) answers.push({ ...base, type: Packet.TYPE.TXT, data });
      }
      send(response);
    },
  });
  await server.listen({ udp: { port: 0, address: '127.0.0.1' } });
  const port = (server.addresses() as { udp: AddressInfo }).udp.port;
  return { address: `127.0.0.1:${port}`, queries, close: () => server.close() };
}
