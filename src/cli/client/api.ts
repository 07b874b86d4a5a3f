// The client's only HTTP edge: JSON calls, raw response streams (CSV, SSE) and the streamed upload,
// all over node:http/https with the API key. Non-2xx answers become ApiError, socket failures ConnectionError.
import { createReadStream } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ClientConfig } from './config.ts';
import { apiErrorFrom, ConnectionError } from './errors.ts';
import { multipartFrame } from './multipart.ts';

export interface RequestOptions {
  query?: Record<string, string | number | undefined>;
  headers?: Record<string, string>;
  /** socket idle time after which the request fails with ETIMEDOUT */
  idleTimeoutMs?: number;
  /** sent as JSON (content-type: application/json); a Buffer is sent as it is, with the content-type of `headers` */
  body?: unknown;
}

export interface UploadFile {
  path: string;
  /** the name the service records (display only) */
  filename: string;
  size: number;
}

export interface UploadEvents {
  onProgress?: (fileBytesSent: number) => void;
  onSent?: () => void;
}

/** The service's 202 answer to an upload. */
export interface UploadAccepted {
  uploadId: string;
  status: string;
  statusUrl: string;
}

const JSON_IDLE_MS = 30_000;
// After the last byte the service still finishes its object-store write before it answers.
const UPLOAD_IDLE_MS = 10 * 60_000;
/** the least time the rest of the file waits after its first piece for an early refusal (see upload) */
const HEAD_PAUSE_MS = 200;
const FIRST_PIECE_BYTES = 16 * 1024;

export class ApiClient {
  constructor(readonly config: ClientConfig) {}

  get baseUrl(): string {
    return this.config.url;
  }

  async json<T>(method: 'GET' | 'POST' | 'PATCH' | 'DELETE', path: string, opts: RequestOptions = {}): Promise<T> {
    const res = await this.open(method, path, { ...opts, headers: { accept: 'application/json', ...opts.headers } });
    const text = await readText(res);
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new ConnectionError('bad_response', `${method} ${path}: the service answered ${res.statusCode} with a body that is not JSON`);
    }
  }

  /** A 2xx response whose body the caller reads (and must consume or destroy). */
  open(method: string, path: string, opts: RequestOptions = {}): Promise<http.IncomingMessage> {
    const raw = Buffer.isBuffer(opts.body);
    const payload = opts.body === undefined ? undefined : raw ? (opts.body as Buffer) : Buffer.from(JSON.stringify(opts.body));
    const headers = payload ? { ...opts.headers, ...(!raw && { 'content-type': 'application/json' }), 'content-length': String(payload.length) } : opts.headers;
    return new Promise((resolve, reject) => {
      const req = this.request(method, path, { ...opts, headers });
      req.on('response', (res) => checked(res).then(resolve, reject));
      req.on('error', (err) => reject(connectionError(err, this.config.url)));
      req.end(payload);
    });
  }

  /**
   * Streams `file` as multipart/form-data with a Content-Length: the file is read in chunks as the socket
   * takes them (backpressure through pipeline), so its size does not matter. `onProgress` sees bytes of
   * the file handed to the socket; `onSent` fires once the whole body is out and the service's answer
   * is awaited (it still finishes its object-store write). `headers`: extra ones, e.g. Idempotency-Key.
   */
  upload(file: UploadFile, fields: Record<string, string>, events: UploadEvents = {}, headers: Record<string, string> = {}): Promise<UploadAccepted> {
    const { onProgress, onSent } = events;
    const frame = multipartFrame(fields, file.filename, file.size);
    return new Promise((resolve, reject) => {
      const req = this.request('POST', '/uploads', {
        headers: { ...headers, 'content-type': frame.contentType, 'content-length': String(frame.contentLength), accept: 'application/json' },
        idleTimeoutMs: UPLOAD_IDLE_MS,
      });
      let answered = false;
      let wakeEarly = () => {};
      req.on('response', (res) => {
        answered = true;
        wakeEarly();
        checked(res)
          .then(readText)
          .then((text) => resolve(JSON.parse(text) as UploadAccepted), reject)
          .finally(() => req.destroy()); // an early refusal: stop sending the rest of the file
      });
      let fileError: Error | null = null;
      let fileBytesSent = 0;
      req.on('error', (err: Error & { code?: string }) => {
        if (answered) return;
        if (fileError) return reject(fileError);
        if (fileBytesSent > 0 && (err.code === 'EPIPE' || err.code === 'ECONNRESET')) {
          return reject(
            new ConnectionError(err.code, `the service closed the connection after ${fileBytesSent} bytes of the file without an answer`, { cause: err }),
          );
        }
        reject(connectionError(err, this.config.url));
      });
      let connectedIn: number | null = null;
      const requestedAt = Date.now();
      req.on('socket', (socket) => socket.once('connect', () => (connectedIn = Date.now() - requestedAt)));

      // Counted where the bytes leave for the socket, so the bar follows the network, not the disk.
      let sent = 0;
      const count = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          sent += chunk.length;
          fileBytesSent = Math.min(file.size, Math.max(0, sent - frame.head.length));
          onProgress?.(fileBytesSent);
          cb(null, chunk);
        },
      });
      pipeline(Readable.from(body(), { objectMode: false, highWaterMark: 64 * 1024 }), count, req).then(
        () => {
          if (!answered) onSent?.();
        },
        (err: unknown) => {
          if (!answered) req.destroy(err instanceof Error ? err : new Error(String(err)));
        },
      );

      async function* body(): AsyncGenerator<Buffer> {
        yield frame.head;
        let fileBytes = 0;
        async function* range(start: number, end: number): AsyncGenerator<Buffer> {
          if (end <= start) return;
          try {
            for await (const chunk of createReadStream(file.path, { start, end: end - 1, highWaterMark: 256 * 1024 })) {
              if (answered) return;
              fileBytes += (chunk as Buffer).length;
              yield chunk as Buffer;
            }
          } catch (err) {
            throw (fileError = new Error(`reading ${file.path}: ${err instanceof Error ? err.message : String(err)}`));
          }
        }
        // The service refuses a bad key or option once it sees the start of the file part, then closes
        // the socket. Were we still writing then, the write would fail (EPIPE) before we could read the
        // refusal; so after a first small piece the file waits a short pause (a few round trips).
        const firstPiece = Math.min(file.size, FIRST_PIECE_BYTES);
        yield* range(0, firstPiece);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.min(2000, Math.max(HEAD_PAUSE_MS, 4 * (connectedIn ?? 0))));
          wakeEarly = () => {
            clearTimeout(timer);
            resolve();
          };
          if (answered) wakeEarly();
        });
        if (answered) return;
        // Exactly the size announced in Content-Length, even if the file grows meanwhile.
        yield* range(firstPiece, file.size);
        if (answered) return;
        if (fileBytes !== file.size) throw (fileError = new Error(`${file.path} shrank while it was being uploaded`));
        yield frame.tail;
      }
    });
  }

  private request(method: string, path: string, opts: RequestOptions): http.ClientRequest {
    const url = this.urlFor(path, opts.query);
    const transport = url.protocol === 'https:' ? https : http;
    const req = transport.request(url, {
      method,
      headers: { authorization: `Bearer ${this.config.key}`, 'user-agent': 'stream-api-cli', ...opts.headers },
    });
    req.setTimeout(opts.idleTimeoutMs ?? JSON_IDLE_MS, () => {
      req.destroy(Object.assign(new Error('no answer from the service in time'), { code: 'ETIMEDOUT' }));
    });
    return req;
  }

  /** The base URL may carry a path prefix (a service behind a proxy at /api): paths are appended to it. */
  private urlFor(path: string, query: RequestOptions['query']): URL {
    const url = new URL(this.config.url + path);
    for (const [name, value] of Object.entries(query ?? {})) {
      if (value !== undefined) url.searchParams.set(name, String(value));
    }
    return url;
  }
}

async function checked(res: http.IncomingMessage): Promise<http.IncomingMessage> {
  const status = res.statusCode ?? 0;
  if (status >= 200 && status < 300) return res;
  throw apiErrorFrom(status, await readText(res).catch(() => ''));
}

async function readText(res: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function connectionError(err: Error & { code?: string }, baseUrl: string): ConnectionError {
  const code = err.code ?? 'connection_failed';
  const why = code === 'ECONNREFUSED' ? 'connection refused — is it running?' : err.message;
  return new ConnectionError(code, `cannot reach the service at ${baseUrl}: ${why}`, { cause: err });
}
