// A TCP proxy between a client and the API that can cut every connection on demand: the network
// failing under an upload (both sockets destroyed, nothing more reaches either side).
import net from 'node:net';

export interface CutProxy {
  /** http://127.0.0.1:<port>: give this to the client instead of the API's URL */
  url: string;
  /** bytes forwarded from clients to the API so far (all connections, headers included) */
  upstreamBytes(): number;
  /** Destroys every open connection (client and API side); returns how many there were. */
  cutAll(): number;
  /**
   * Arms one cut: once `upstreamBytes()` reaches `at`, every open connection is destroyed (the bytes
   * of the chunk that reached it are not forwarded) and `then` is called with the count of connections.
   */
  cutAt(at: number, then: (connections: number) => void): void;
  close(): Promise<void>;
}

/** Listens on a free loopback port and forwards each connection to `target` (an http:// URL). */
export async function startCutProxy(target: string): Promise<CutProxy> {
  const { hostname, port } = new URL(target);
  const open = new Set<{ client: net.Socket; upstream: net.Socket }>();
  let forwarded = 0;
  let armed: { at: number; then: (connections: number) => void } | null = null;
  const cutAll = () => {
    const n = open.size;
    for (const { client, upstream } of [...open]) {
      client.destroy();
      upstream.destroy();
    }
    open.clear();
    return n;
  };
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(port), hostname);
    const pair = { client, upstream };
    open.add(pair);
    const end = () => {
      open.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    // before pipe's own listener: a cut lands before the chunk is written on
    client.on('data', (chunk: Buffer) => {
      forwarded += chunk.length;
      if (armed && forwarded >= armed.at) {
        const { then } = armed;
        armed = null;
        then(cutAll());
      }
    });
    client.pipe(upstream);
    upstream.pipe(client);
    for (const socket of [client, upstream]) socket.once('error', end).once('close', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${address.port}`,
    upstreamBytes: () => forwarded,
    cutAll,
    cutAt: (at, then) => (armed = { at, then }),
    close: () =>
      new Promise((resolve) => {
        for (const { client, upstream } of open) (client.destroy(), upstream.destroy());
        server.close(() => resolve());
      }),
  };
}
