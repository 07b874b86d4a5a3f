// A real HTTP client for tests: streams a multipart body from a file or a buffer over a socket.
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import path from 'node:path';

export interface HttpResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: any;
  text: string;
}

export interface UploadInput {
  file?: { path: string } | { content: string | Buffer; filename?: string };
  fields?: Record<string, string>;
  /** fields sent after the file part */
  trailingFields?: Record<string, string>;
  headers?: Record<string, string>;
  query?: string;
  path?: string;
  /** abort the request after this many body bytes have been written */
  abortAfterBytes?: number;
  onProgress?: (bytesSent: number) => void;
}

export async function upload(baseUrl: string, key: string | null, input: UploadInput): Promise<HttpResult> {
  const boundary = `----stream-api-test-${randomBytes(8).toString('hex')}`;
  const fieldPart = (name: string, value: string) =>
    `--${boundary}\r\ncontent-disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`;
  const head = Object.entries(input.fields ?? {}).map(([k, v]) => fieldPart(k, v)).join('');
  const tail =
    Object.entries(input.trailingFields ?? {}).map(([k, v]) => fieldPart(k, v)).join('') + `--${boundary}--\r\n`;

  let fileHead = '';
  let fileSize = 0;
  let fileSource: (() => AsyncIterable<Buffer | string>) | null = null;
  if (input.file) {
    const filename = 'path' in input.file ? path.basename(input.file.path) : (input.file.filename ?? 'data.csv');
    fileHead = `--${boundary}\r\ncontent-disposition: form-data; name="file"; filename="${filename}"\r\ncontent-type: text/csv\r\n\r\n`;
    if ('path' in input.file) {
      const p = input.file.path;
      fileSize = (await stat(p)).size;
      fileSource = () => createReadStream(p, { highWaterMark: 256 * 1024 });
    } else {
      const content = Buffer.from(input.file.content);
      fileSize = content.length;
      fileSource = async function* () {
        yield content;
      };
    }
  }
  const length = Buffer.byteLength(head) + Buffer.byteLength(fileHead) + fileSize + (input.file ? 2 : 0) + Buffer.byteLength(tail);

  const url = new URL((input.path ?? '/upload') + (input.query ? `?${input.query}` : ''), baseUrl);
  async function* body(): AsyncGenerator<Buffer> {
    yield Buffer.from(head);
    if (fileSource) {
      yield Buffer.from(fileHead);
      for await (const chunk of fileSource()) yield Buffer.from(chunk);
      yield Buffer.from('\r\n');
    }
    yield Buffer.from(tail);
  }
  return new Promise<HttpResult>((resolve, reject) => {
    const req = http.request(url, {
      method: 'POST',
      agent: false,
      headers: {
        'content-type': `multipart/form-data; boundary=${boundary}`,
        'content-length': String(length),
        ...(key ? { authorization: `Bearer ${key}` } : {}),
        ...input.headers,
      },
    });
    // A server that answers early (413, 400 …) and closes can make our write fail before its
    // response is parsed: give the response a moment to win over the write error.
    let answered = false;
    req.on('response', (res) => {
      answered = true;
      collect(res).then(resolve, reject);
    });
    req.on('error', (err) => setTimeout(() => answered || reject(err), 500));
    let sent = 0;
    const counted = Readable.from(body()).pipe(
      new Transform({
        transform(chunk: Buffer, _enc, cb) {
          sent += chunk.length;
          if (input.abortAfterBytes !== undefined && sent >= input.abortAfterBytes) {
            req.destroy(new Error('client aborted on purpose'));
            return cb();
          }
          input.onProgress?.(sent);
          cb(null, chunk);
        },
      }),
    );
    // pipeline keeps backpressure between the file and the socket; a server that answers early and
    // closes ends it with an error we do not care about (the response is what the test reads).
    pipeline(counted, req).catch(() => {});
  });
}

export async function request(
  baseUrl: string,
  key: string | null,
  method: string,
  pathname: string,
  headers: Record<string, string> = {},
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = http.request(new URL(pathname, baseUrl), {
      method,
      headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...headers },
    });
    req.on('response', (res) => collect(res).then(resolve, reject));
    req.on('error', reject);
    req.end();
  });
}

/** A request with a JSON body (`content-type: application/json`). */
export async function sendJson(
  baseUrl: string,
  key: string | null,
  method: string,
  pathname: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<HttpResult> {
  const payload = Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = http.request(new URL(pathname, baseUrl), {
      method,
      headers: {
        ...(key ? { authorization: `Bearer ${key}` } : {}),
        'content-type': 'application/json',
        'content-length': String(payload.length),
        ...headers,
      },
    });
    req.on('response', (res) => collect(res).then(resolve, reject));
    req.on('error', reject);
    req.end(payload);
  });
}

async function collect(res: http.IncomingMessage): Promise<HttpResult> {
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  let body: unknown = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = text;
  }
  return { status: res.statusCode ?? 0, headers: res.headers, body, text };
}

export interface RawRequestInput {
  method?: string;
  path: string;
  headers?: Record<string, string>;
  /** sent as is; `content-length` is its length unless `headers` says otherwise */
  body?: string | Buffer;
  /** API key sent as a Bearer token */
  key?: string | null;
}

/** One request with exactly these headers and body bytes (a fresh connection): for malformed input. */
export function rawRequest(baseUrl: string, input: RawRequestInput): Promise<HttpResult> {
  const body = input.body === undefined ? undefined : Buffer.from(input.body);
  return new Promise((resolve, reject) => {
    const req = http.request(new URL(input.path, baseUrl), {
      method: input.method ?? 'POST',
      agent: false,
      headers: {
        ...(body ? { 'content-length': String(body.length) } : {}),
        ...(input.key ? { authorization: `Bearer ${input.key}` } : {}),
        ...input.headers,
      },
    });
    let answered = false;
    req.on('response', (res) => {
      answered = true;
      collect(res).then(resolve, reject);
    });
    req.on('error', (err) => setTimeout(() => answered || reject(err), 500));
    req.end(body);
  });
}

/** A multipart/form-data body with one CSV `file` part, and its boundary. `cutBytes` drops that many bytes from its end. */
export function multipartBody(content: string | Buffer, opts: { boundary?: string; cutBytes?: number } = {}) {
  const boundary = opts.boundary ?? `----stream-api-test-${randomBytes(8).toString('hex')}`;
  const body = Buffer.concat([
    Buffer.from(`--${boundary}\r\ncontent-disposition: form-data; name="file"; filename="data.csv"\r\ncontent-type: text/csv\r\n\r\n`),
    Buffer.from(content),
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  return { boundary, body: opts.cutBytes ? body.subarray(0, body.length - opts.cutBytes) : body };
}

export interface HeldUpload {
  /** the answer, whenever it comes (early when the server cuts the upload) */
  response: Promise<HttpResult>;
  /** resolves when the connection is closed (by either side) */
  closed: Promise<void>;
  /** sends `bytes` more of the body (all of the rest by default) */
  send(bytes?: number): void;
  destroy(): void;
}

/**
 * A multipart upload of `content` whose body is sent only as far as `sentBytes`, then held: the
 * connection stays open, mid-body, until `send` or `destroy`.
 */
export async function holdUpload(
  baseUrl: string,
  key: string,
  content: string | Buffer,
  opts: { sentBytes: number; path?: string },
): Promise<HeldUpload> {
  const { boundary, body } = multipartBody(content);
  const req = http.request(new URL(opts.path ?? '/upload', baseUrl), {
    method: 'POST',
    agent: false,
    headers: {
      authorization: `Bearer ${key}`,
      'content-type': `multipart/form-data; boundary=${boundary}`,
      'content-length': String(body.length),
    },
  });
  const response = new Promise<HttpResult>((resolve, reject) => {
    req.on('response', (res) => collect(res).then(resolve, reject));
    req.on('error', reject);
  });
  response.catch(() => {}); // a test that never reads it must not see an unhandled rejection
  const socket = await new Promise<import('node:net').Socket>((resolve) => req.once('socket', resolve));
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  let offset = 0;
  const send = (bytes = body.length - offset) => {
    const end = Math.min(body.length, offset + bytes);
    if (end > offset && !req.destroyed) req.write(body.subarray(offset, end));
    offset = end;
    if (offset === body.length && !req.destroyed) req.end();
  };
  send(opts.sentBytes);
  return { response, closed, send, destroy: () => req.destroy() };
}
