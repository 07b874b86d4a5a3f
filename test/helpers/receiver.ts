// A real webhook receiver on loopback (node:http) that records every request and every connection.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface Received {
  /** Date.now() when the whole body had arrived */
  at: number;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

export type ReceiverHandler = (req: IncomingMessage, res: ServerResponse, received: Received) => void;

export interface Receiver {
  url: string;
  port: number;
  requests: Received[];
  connections: number;
  handler: ReceiverHandler;
  /** resolves once `count` requests have arrived */
  waitForRequests(count: number, timeoutMs?: number): Promise<Received[]>;
  close(): Promise<void>;
}

export const ok: ReceiverHandler = (_req, res) => res.end('ok');

export async function startReceiver(host = '127.0.0.1', handler: ReceiverHandler = ok): Promise<Receiver> {
  const sockets = new Set<Socket>();
  const waiters: (() => void)[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const received: Received = { at: Date.now(), url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      receiver.requests.push(received);
      for (const wake of waiters.splice(0)) wake();
      receiver.handler(req, res, received);
    });
  });
  server.on('connection', (socket: Socket) => {
    receiver.connections += 1;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const port = (server.address() as AddressInfo).port;
  const receiver: Receiver = {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}/hook`,
    port,
    requests: [],
    connections: 0,
    handler,
    async waitForRequests(count, timeoutMs = 15_000) {
      const until = Date.now() + timeoutMs;
      while (receiver.requests.length < count) {
        const left = until - Date.now();
        if (left <= 0) throw new Error(`receiver got ${receiver.requests.length} of ${count} requests in ${timeoutMs} ms`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left);
          waiters.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
      return receiver.requests;
    },
    close() {
      // Hung handlers never end their sockets; destroy them so close() does not wait forever.
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return receiver;
}
