// Fuzzing tools: a seeded PRNG (a failure reproduces from its seed) and a raw HTTP/1.1 exchange over a
// socket, for requests no well-behaved client library would send (cut, malformed, smuggled).
import net from 'node:net';

/** mulberry32: a small, fast, seedable PRNG (uniform in [0, 1)). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class Rng {
  private readonly next: () => number;

  constructor(seed: number) {
    this.next = mulberry32(seed);
  }

  /** an integer in [0, n) */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }

  bytes(n: number): Buffer {
    const out = Buffer.alloc(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }
}

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * Writes `chunks` to a fresh connection (pausing `pauseMs` between them), then reads until the server
 * closes the connection or `timeoutMs` passes, and parses every HTTP response in what came back.
 * `destroyAfterWrite`: the client cuts the connection right after writing (no answer expected).
 * A `text/event-stream` or `101` answer is not read to its end: the connection is closed at once.
 */
export function rawExchange(
  port: number,
  chunks: Buffer[],
  opts: { timeoutMs: number; destroyAfterWrite?: boolean; pauseMs?: number },
): Promise<{ responses: RawResponse[]; raw: Buffer }> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const received: Buffer[] = [];
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      const raw = Buffer.concat(received);
      resolve({ responses: parseResponses(raw), raw });
    };
    const timer = setTimeout(finish, opts.timeoutMs);
    socket.on('data', (d: Buffer) => {
      received.push(d);
      const head = Buffer.concat(received).toString('latin1');
      if (/^HTTP\/1\.1 101 /.test(head) || /\r\ncontent-type: text\/event-stream/i.test(head.split('\r\n\r\n')[0] ?? '')) finish();
    });
    socket.on('close', finish);
    socket.on('error', () => {}); // a reset while writing: the answer so far is what we judge
    socket.once('connect', async () => {
      for (const [i, chunk] of chunks.entries()) {
        if (socket.destroyed) break;
        socket.write(chunk);
        if (opts.pauseMs && i < chunks.length - 1) await new Promise((r) => setTimeout(r, opts.pauseMs));
      }
      if (opts.destroyAfterWrite) setTimeout(finish, 5);
    });
  });
}

/** Every complete HTTP/1.1 response in `raw` (Content-Length or chunked bodies), in order. */
export function parseResponses(raw: Buffer): RawResponse[] {
  const out: RawResponse[] = [];
  let rest = raw;
  while (rest.length > 0) {
    const headEnd = rest.indexOf('\r\n\r\n');
    if (headEnd < 0) break;
    const [statusLine, ...lines] = rest.subarray(0, headEnd).toString('latin1').split('\r\n');
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? '')?.[1] ?? NaN);
    if (!Number.isFinite(status)) break;
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(':');
      if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    let body = rest.subarray(headEnd + 4);
    let next: Buffer = Buffer.alloc(0);
    if (headers['transfer-encoding']?.toLowerCase() === 'chunked') {
      const parts: Buffer[] = [];
      let at = 0;
      for (;;) {
        const lineEnd = body.indexOf('\r\n', at);
        if (lineEnd < 0) break;
        const size = parseInt(body.subarray(at, lineEnd).toString('latin1'), 16);
        if (!Number.isFinite(size)) break;
        parts.push(body.subarray(lineEnd + 2, lineEnd + 2 + size));
        at = lineEnd + 2 + size + 2;
        if (size === 0) break;
      }
      next = body.subarray(at);
      body = Buffer.concat(parts);
    } else if (headers['content-length'] !== undefined) {
      const length = Number(headers['content-length']);
      next = body.subarray(length);
      body = body.subarray(0, length);
    }
    out.push({ status, headers, body: body.toString('utf8') });
    if (status === 101 || headers['content-type']?.startsWith('text/event-stream')) break;
    rest = next;
  }
  return out;
}
