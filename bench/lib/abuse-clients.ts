// The abusive clients of bench/abuse.ts, on real sockets: uploads that trickle a few bytes per second
// (after an optional burst), and live streams (SSE) that stay open and read what comes.
import http from 'node:http';
import { randomBytes } from 'node:crypto';

export interface SlowUpload {
  /** bytes written so far */
  sent(): number;
  /** set when the server answered before the end (refused or cut the upload) */
  answer(): number | null;
  close(): void;
}

/**
 * A multipart upload declared `declaredBytes` long that sends `burstBytes` at once, then `bytesPerTick`
 * every `tickMs`, never finishing (the bench closes it). Refused uploads show in `answer()`.
 */
export function slowUpload(
  baseUrl: string,
  key: string,
  opts: { declaredBytes: number; burstBytes: number; bytesPerTick: number; tickMs: number },
): SlowUpload {
  const boundary = `abuse-${randomBytes(6).toString('hex')}`;
  const head = Buffer.from(
    `--${boundary}\r\ncontent-disposition: form-data; name="file"; filename="slow.csv"\r\ncontent-type: text/csv\r\n\r\n` +
      'event_id,event_type,occurred_at\n',
  );
  const req = http.request(new URL('/upload', baseUrl), {
    method: 'POST',
    agent: false,
    headers: {
      authorization: `Bearer ${key}`,
      'content-type': `multipart/form-data; boundary=${boundary}`,
      'content-length': String(opts.declaredBytes),
    },
  });
  let sent = 0;
  let status: number | null = null;
  req.on('response', (res) => {
    status = res.statusCode ?? 0;
    res.resume();
  });
  req.on('error', () => {});
  const write = (chunk: Buffer) => {
    if (req.destroyed || sent + chunk.length >= opts.declaredBytes) return;
    req.write(chunk);
    sent += chunk.length;
  };
  write(head);
  // CSV-looking filler, so the upload passes the server's sniffing of its first KiB.
  const line = Buffer.from('0b7f2c4e-1111-4a2b-a333-123456789abc,invoice.paid,2025-01-01T00:00:00Z\n');
  for (let left = opts.burstBytes; left > 0; left -= 64 * 1024) {
    write(Buffer.concat(Array.from({ length: Math.ceil(Math.min(left, 64 * 1024) / line.length) }, () => line)));
  }
  const drip = Buffer.alloc(opts.bytesPerTick, 'x');
  const timer = setInterval(() => write(drip), opts.tickMs);
  return {
    sent: () => sent,
    answer: () => status,
    close: () => {
      clearInterval(timer);
      req.destroy();
    },
  };
}

export interface OpenStream {
  status(): number | null;
  bytesRead(): number;
  close(): void;
}

/** An SSE stream held open; resolves once the server answered (200, or an error it refused with). */
export function openStream(baseUrl: string, path: string, key: string): Promise<OpenStream> {
  return new Promise((resolve, reject) => {
    let status: number | null = null;
    let bytes = 0;
    const req = http.get(new URL(path, baseUrl), { agent: false, headers: { authorization: `Bearer ${key}`, accept: 'text/event-stream' } });
    const handle: OpenStream = { status: () => status, bytesRead: () => bytes, close: () => req.destroy() };
    req.on('response', (res) => {
      status = res.statusCode ?? 0;
      res.on('data', (chunk: Buffer) => (bytes += chunk.length));
      res.on('error', () => {});
      resolve(handle);
    });
    req.on('error', reject);
  });
}

/** Latency of one GET (ms), or null when it failed: is the server still answering others? */
export function probe(baseUrl: string, path: string): Promise<number | null> {
  const started = performance.now();
  return new Promise((resolve) => {
    const req = http.get(new URL(path, baseUrl), { agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200 ? performance.now() - started : null));
    });
    req.on('error', () => resolve(null));
    req.setTimeout(10_000, () => req.destroy());
  });
}
