// A TCP proxy on loopback between a client under test and the API: it counts the bytes the client sends,
// can slow them to a set rate (so a test can act in the middle of an upload), and can cut the connection
// once after a number of client bytes (a network failure: both sockets destroyed, nothing answered).
import net from 'node:net';

export interface TcpProxyOptions {
  /** client → server bytes per second (all connections together); unlimited when absent */
  bytesPerSecond?: number;
  /** destroy the connection carrying the client's byte number N (counted over all connections), once */
  cutAfterBytes?: number;
}

export interface TcpProxy {
  url: string;
  /** the options in force: change them while it runs (e.g. lift the rate limit) */
  options: TcpProxyOptions;
  /** client → server bytes forwarded so far (over all connections) */
  readonly bytesUp: number;
  /** connections accepted so far */
  readonly connections: number;
  /** whether the cut happened */
  readonly cut: boolean;
  close(): Promise<void>;
}

/** Starts a proxy to `target` (an http://host:port URL) on 127.0.0.1, any free port. */
export async function startTcpProxy(target: string, options: TcpProxyOptions = {}): Promise<TcpProxy> {
  const opts = { ...options };
  const { hostname, port } = new URL(target);
  const sockets = new Set<net.Socket>();
  let bytesUp = 0;
  let connections = 0;
  let cut = false;
  const server = net.createServer((client) => {
    connections += 1;
    const upstream = net.connect(Number(port), hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {});
    }
    const destroyBoth = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', destroyBoth);
    upstream.on('close', destroyBoth);
    upstream.pipe(client);
    client.on('data', (chunk: Buffer) => {
      if (opts.cutAfterBytes !== undefined && !cut && bytesUp + chunk.length >= opts.cutAfterBytes) {
        cut = true;
        upstream.write(chunk.subarray(0, Math.max(0, opts.cutAfterBytes - bytesUp)));
        bytesUp = opts.cutAfterBytes;
        // Let what was written leave before the cut, as on a real link that fails mid-stream.
        setTimeout(destroyBoth, 50);
        client.pause();
        return;
      }
      bytesUp += chunk.length;
      if (!upstream.write(chunk)) {
        client.pause();
        upstream.once('drain', () => client.resume());
      }
      if (opts.bytesPerSecond) {
        client.pause();
        setTimeout(() => client.resume(), (chunk.length / opts.bytesPerSecond) * 1000);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${address.port}`,
    options: opts,
    get bytesUp() {
      return bytesUp;
    },
    get connections() {
      return connections;
    },
    get cut() {
      return cut;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
