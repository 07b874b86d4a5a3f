// `upload --wait` and the live progress stream. Against a scripted service on loopback: the stream is
// dropped at a chosen event (resumed with Last-Event-ID), missing (polled instead), or ends `failed` —
// a real service cannot be made to do that on cue, so this one plays the docs/CONTRACTS.md part. And
// against the real service, through a proxy that cuts the first stream.
import { Transform } from 'node:stream';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestEnv, startApi } from '../helpers/env.ts';
import { generateEvents } from '../helpers/generate.ts';
import { countRows, startTestWorker } from '../helpers/worker.ts';

const BIN = fileURLToPath(new URL('../../bin/stream-api.mjs', import.meta.url));
const KEY = 'sapi_test_key';
const UPLOAD_ID = '11111111-2222-4333-8444-555555555555';

type Handler = (req: IncomingMessage, res: ServerResponse, n: number) => void;

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  bodyBytes: number;
}

let server: Server;
let url: string;
let dir: string;
let file: string;
let seen: Seen[] = [];
let onEvents: Handler;
let onStatus: Handler;

function uploadBody(status: string, extra: Record<string, unknown> = {}) {
  return {
    uploadId: UPLOAD_ID, status, dataset: 'webhook_events', filename: 'f.csv', sizeBytes: 1000, sha256: '0'.repeat(64),
    rowsProcessed: 0, rowsFailed: 0, bytesProcessed: 0, progress: 0, attempt: 1, error: null, unknownColumns: [],
    callbackUrl: null, createdAt: '2025-01-01T00:00:00.000Z', startedAt: null, completedAt: null,
    updatedAt: '2025-01-01T00:00:00.000Z', ...extra,
  };
}

const finished = uploadBody('completed', {
  rowsProcessed: 990, rowsFailed: 10, bytesProcessed: 1000, progress: 1,
  startedAt: '2025-01-01T00:00:01.000Z', completedAt: '2025-01-01T00:00:02.000Z',
});

function sse(res: ServerResponse, id: number, event: string, data: unknown): void {
  res.write(`id: ${id}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'stream-api-cli-live-'));
  file = path.join(dir, 'f.csv');
  await writeFile(file, 'event_id\n'.padEnd(1000, 'x'));
  let eventsRequests = 0;
  let statusRequests = 0;
  server = createServer((req, res) => {
    let bodyBytes = 0;
    req.on('data', (c: Buffer) => (bodyBytes += c.length));
    req.on('end', () => {
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, bodyBytes });
      if (req.headers.authorization !== `Bearer ${KEY}`) return json(res, 401, { error: { code: 'unauthorized', message: 'missing or invalid API key' } });
      if (req.method === 'POST' && req.url === '/uploads') return json(res, 202, { uploadId: UPLOAD_ID, status: 'uploaded', statusUrl: `/uploads/${UPLOAD_ID}` });
      if (req.url === `/uploads/${UPLOAD_ID}/events`) return onEvents(req, res, ++eventsRequests);
      if (req.url === `/uploads/${UPLOAD_ID}`) return onStatus(req, res, ++statusRequests);
      json(res, 404, { error: { code: 'route_not_found', message: `no route ${req.method} ${req.url}` } });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  onStatus = (_req, res) => json(res, 500, { error: { code: 'internal', message: 'not scripted' } });
});

afterAll(async () => {
  server?.closeAllConnections();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  if (dir) await rm(dir, { recursive: true, force: true });
});

function runCli(args: string[], target = { url, key: KEY }): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const env = { ...process.env, STREAM_API_URL: target.url, STREAM_API_KEY: target.key };
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('upload --wait over the live progress stream', () => {
  it('a dropped stream is resumed with Last-Event-ID, and the summary comes from `done`', async () => {
    seen = [];
    onEvents = (_req, res, n) => {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      if (n === 1) {
        sse(res, 1, 'status', uploadBody('processing'));
        sse(res, 2, 'progress', { uploadId: UPLOAD_ID, status: 'processing', rowsProcessed: 500, rowsFailed: 5, bytesProcessed: 500, progress: 0.5, rowsPerSecond: 1000 });
        res.write('id: 3\nevent: progress\ndata: {"half an ev'); // the rest never comes
        setTimeout(() => res.socket?.destroy(), 50);
        return;
      }
      res.write(': resumed\n\n');
      sse(res, 4, 'status', finished);
      sse(res, 5, 'done', finished);
      res.end();
    };
    const res = await runCli(['upload', file, '--wait', '--json']);
    expect(res.code, res.stderr).toBe(0);
    expect(JSON.parse(res.stdout)).toMatchObject({ uploadId: UPLOAD_ID, status: 'completed', rowsLoaded: 990, rowsRejected: 10, upload: finished });

    const upload = seen.find((s) => s.method === 'POST')!;
    expect(Number(upload.headers['content-length'])).toBe(upload.bodyBytes);
    const streams = seen.filter((s) => s.url.endsWith('/events'));
    expect(streams).toHaveLength(2);
    expect(streams[0]!.headers['last-event-id']).toBeUndefined();
    expect(streams[1]!.headers['last-event-id']).toBe('2'); // the half event's id was never complete
    expect(streams.every((s) => s.headers.authorization === `Bearer ${KEY}` && s.headers.accept === 'text/event-stream')).toBe(true);
    expect(res.stderr).toContain('progress stream dropped');
    expect(res.stderr).toContain('processing 50.0%: 500 rows loaded, 5 rejected');
    expect(res.stderr).not.toContain('\r');
  });

  it('`done` with a failed upload → exit 1 and its error', async () => {
    const failed = uploadBody('failed', { error: { code: 'too_many_errors', message: 'more than 5 rows were rejected' }, rowsFailed: 6 });
    onEvents = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      sse(res, 1, 'status', failed);
      sse(res, 2, 'done', failed);
      res.end();
    };
    const res = await runCli(['upload', file, '--wait']);
    expect(res.code).toBe(1);
    expect(res.stdout).toMatch(/^error +too_many_errors: more than 5 rows were rejected$/m);
    expect(res.stderr).toContain('upload failed: too_many_errors: more than 5 rows were rejected');
  });

  it('a service without the live route is polled until the upload ends', async () => {
    onEvents = (req, res) => json(res, 404, { error: { code: 'route_not_found', message: `no route GET ${req.url}` } });
    onStatus = (_req, res, n) => json(res, 200, n < 3 ? uploadBody('processing', { progress: n / 3, rowsProcessed: n * 100 }) : finished);
    const res = await runCli(['upload', file, '--wait', '--json']);
    expect(res.code, res.stderr).toBe(0);
    expect(JSON.parse(res.stdout)).toMatchObject({ status: 'completed', rowsLoaded: 990 });
    expect(res.stderr).toContain('polling');
  });

  it('a stream that keeps ending early is given up after a bounded number of tries, exit 1', async () => {
    seen = [];
    // `retry:` is the server's reconnection advice: honoured, so the test need not wait out the backoff.
    onEvents = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end('retry: 10\n\n');
    };
    const res = await runCli(['upload', file, '--wait', '--json']);
    expect(res.code).toBe(1);
    expect(JSON.parse(res.stdout).error.code).toBe('event_stream_lost');
    expect(res.stderr).toContain(`the upload goes on at the service: stream-api status ${UPLOAD_ID}`);
    expect(seen.filter((s) => s.url.endsWith('/events'))).toHaveLength(9); // the first try and 8 more
  });

  it('a refusal that will not change (401) is not retried', async () => {
    seen = [];
    onEvents = (_req, res) => json(res, 401, { error: { code: 'unauthorized', message: 'missing or invalid API key' } });
    const res = await runCli(['upload', file, '--wait']);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('error: unauthorized: missing or invalid API key');
    expect(seen.filter((s) => s.url.endsWith('/events'))).toHaveLength(1);
  });
});

describe('against the real service', () => {
  it('a stream cut by the network is resumed with Last-Event-ID and still ends with the summary', async () => {
    const t = await createTestEnv();
    const api = await startApi(t);
    // A deliberately slow read (~3 s for the file), so the load is still running when the proxy cuts
    // the first stream: on a fast machine an unthrottled 50k-row load can finish before the cut.
    const worker = await startTestWorker(t, {
      wrapSource: (body) => body.pipe(new Transform({ transform: (c, _e, cb) => setTimeout(() => cb(null, c), 20) })),
    });
    const { key } = await t.newTenantKey();
    const cut = await startCuttingProxy(new URL(api.url).port);
    try {
      const csv = path.join(dir, 'real.csv');
      await generateEvents(50_000, csv);
      const res = await runCli(['upload', csv, '--wait', '--json'], { url: cut.url, key });
      expect(res.code, res.stderr).toBe(0);
      const summary = JSON.parse(res.stdout);
      expect(summary).toMatchObject({ status: 'completed', rowsLoaded: 50_000, rowsRejected: 0 });
      expect((await countRows(t, summary.uploadId)).total).toBe(50_000);
      expect(res.stderr).toContain('progress stream dropped');
      expect(cut.eventRequests).toHaveLength(2);
      expect(cut.eventRequests[0]!.lastEventId).toBeNull();
      expect(cut.eventRequests[1]!.lastEventId).toMatch(/\S/);
    } finally {
      await cut.close();
      await worker.stop();
      await api.close();
      await t.close();
    }
  });
});

/** A TCP proxy to the API that destroys the first event stream shortly after its first bytes. */
async function startCuttingProxy(apiPort: string) {
  const eventRequests: { lastEventId: string | null }[] = [];
  const sockets = new Set<net.Socket>();
  let cutDone = false;
  const proxy = net.createServer((client) => {
    const upstream = net.connect(Number(apiPort), '127.0.0.1');
    sockets.add(client).add(upstream);
    let streaming = false; // keep-alive: the POST and the GET may share this connection
    client.on('data', (chunk: Buffer) => {
      const head = chunk.toString('latin1');
      if (/^GET \/uploads\/[^ ]+\/events /.test(head)) {
        streaming = true;
        eventRequests.push({ lastEventId: /\r\nlast-event-id: *([^\r]*)\r\n/i.exec(head)?.[1] ?? null });
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      client.write(chunk);
      if (streaming && !cutDone) {
        cutDone = true;
        setTimeout(() => {
          client.destroy();
          upstream.destroy();
        }, 150);
      }
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`,
    eventRequests,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => proxy.close(() => resolve()));
    },
  };
}
