// Resource limits one client cannot exhaust, over real sockets: a stalled upload body is cut after
// BODY_IDLE_TIMEOUT_MS (and cleaned up: no row, object or open multipart upload), slow headers and
// idle keep-alive connections are closed, and per-tenant limits answer 429 with Retry-After.
import http from 'node:http';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedS3, type EmbeddedS3Handle } from '../../src/storage/embedded-s3.ts';
import { createTestEnv, startApi, type TestEnv } from '../helpers/env.ts';
import { holdUpload, rawRequest, request, upload } from '../helpers/http.ts';
import { insertIdleUpload, openSse, openWs } from '../helpers/live.ts';

const IDLE_MS = 1000;
const CSV = 'event_id,event_type,occurred_at\n0b7f2c4e-1111-4a2b-a333-123456789abc,invoice.paid,2025-01-01T00:00:00Z\n';
const BIG = CSV + 'x'.repeat(6 * 1024 * 1024); // more than one 5 MiB part

let s3Dir: string;
let s3: EmbeddedS3Handle;
let t: TestEnv;
let api: Awaited<ReturnType<typeof startApi>>;

beforeAll(async () => {
  s3Dir = await mkdtemp(path.join(os.tmpdir(), 'stream-api-limits-s3-'));
  s3 = await startEmbeddedS3({ dataDir: s3Dir, port: 0, bucket: 'unused' });
  t = await createTestEnv({
    S3_ENDPOINT: s3.endpoint,
    BODY_IDLE_TIMEOUT_MS: String(IDLE_MS),
    HEADERS_TIMEOUT_MS: '1000',
    KEEP_ALIVE_TIMEOUT_MS: '1000',
    LIMIT_UPLOADS_IN_FLIGHT: '2',
    LIMIT_UPLOADS_PER_MINUTE: '8',
    LIMIT_TOKENS_PER_MINUTE: '2',
    LIMIT_LIVE_STREAMS: '2',
  });
  api = await startApi(t);
});
afterAll(async () => {
  await api?.close();
  await t?.close();
  await s3?.stop();
  await rm(s3Dir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function openMultipartParts(): Promise<string[]> {
  const all = await readdir(s3.directory, { recursive: true, withFileTypes: true });
  return all.filter((e) => e.isFile() && e.parentPath.includes('._S3rver_uploads')).map((e) => e.name);
}

async function waitUntil(check: () => Promise<boolean> | boolean, timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await check()) return true;
    await sleep(50);
  }
  return check();
}

/** Resolves with how long `promise` took, or rejects after `ms`. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: nothing after ${ms} ms`)), ms)));
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** An upload that sends a chunk every half idle timeout, for about 2.5 s: slow, never idle. */
async function slowUpload(key: string) {
  const held = await holdUpload(api.url, key, CSV, { sentBytes: 10 });
  for (let sent = 10; sent < CSV.length + 200; sent += 60) {
    await sleep(IDLE_MS / 2);
    held.send(60);
  }
  held.send();
  return within(held.response, 5000, 'slow upload');
}

describe('idle and timeouts', () => {
  it('an upload stalled mid-body is cut after the idle timeout (408, closed, nothing stored, no multipart upload left); a slow one that keeps sending is not', async () => {
    const { tenantId, key } = await t.newTenantKey();
    const slow = slowUpload((await t.newTenantKey()).key);
    const held = await holdUpload(api.url, key, BIG, { sentBytes: 5.5 * 1024 * 1024 });
    expect(await waitUntil(async () => (await openMultipartParts()).length > 0, 5000)).toBe(true); // storage holds a part
    const stalledAt = Date.now();

    const res = await within(held.response, 6 * IDLE_MS, 'answer to a stalled upload');
    const afterMs = Date.now() - stalledAt;
    expect(res.status).toBe(408);
    expect(res.body.error.code).toBe('body_idle_timeout');
    expect(res.headers.connection).toBe('close');
    expect(afterMs).toBeGreaterThanOrEqual(IDLE_MS * 0.9);
    await within(held.closed, 3 * IDLE_MS, 'connection close');

    // The client resumes, too late: the upload is not completed.
    held.send();
    await sleep(300);
    expect(await waitUntil(async () => (await openMultipartParts()).length === 0, 3000)).toBe(true);
    expect(await t.listObjects(`uploads/${tenantId}/`)).toEqual([]);
    expect((await t.pool.query('SELECT 1 FROM uploads WHERE tenant_id = $1', [tenantId])).rowCount).toBe(0);

    const slowRes = await slow;
    expect(slowRes.status, slowRes.text).toBe(202);
  });

  it('any request body stalled (POST /auth/token with a JSON body) is cut the same way', async () => {
    const { key } = await t.newTenantKey();
    const req = http.request(new URL('/auth/token', api.url), {
      method: 'POST',
      agent: false,
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'content-length': '100' },
    });
    req.write('{"a":');
    const res = await within(
      new Promise<http.IncomingMessage>((resolve, reject) => req.on('response', resolve).on('error', reject)),
      6 * IDLE_MS,
      'answer to a stalled JSON body',
    );
    expect(res.statusCode).toBe(408);
    req.destroy();
  });

  it('headers that do not arrive within HEADERS_TIMEOUT_MS: 408 request_timeout in our error shape, connection closed', async () => {
    const socket = net.connect(Number(new URL(api.url).port), '127.0.0.1');
    let received = '';
    socket.on('data', (d) => (received += String(d)));
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n'); // no blank line: headers never end
    await within(closed, 5000, 'close of a connection whose headers stall');
    expect(received).toMatch(/^HTTP\/1\.1 408 /);
    expect(JSON.parse(received.slice(received.indexOf('\r\n\r\n') + 4))).toEqual({
      error: { code: 'request_timeout', message: expect.any(String) },
    });
  });

  it('an idle keep-alive connection is closed after KEEP_ALIVE_TIMEOUT_MS', async () => {
    const socket = net.connect(Number(new URL(api.url).port), '127.0.0.1');
    let received = '';
    const answered = new Promise<number>((resolve) =>
      socket.on('data', (d) => {
        received += String(d);
        if (received.includes('"status":"ok"')) resolve(Date.now());
      }),
    );
    const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now())));
    socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    const idleFrom = await within(answered, 5000, 'answer');
    expect(received).toMatch(/Connection: keep-alive/i);
    const idleMs = (await within(closed, 8000, 'keep-alive close')) - idleFrom;
    expect(idleMs).toBeGreaterThanOrEqual(900);
  });
});

describe('early answers', () => {
  it('an upload refused before its body is read still gets its answer to a client that keeps sending (lingering close)', async () => {
    // Bytes a client sends to a closed connection draw a TCP reset, and a reset discards the answer
    // the client has not read yet: here it reads only after sending on for a while.
    for (const key of [null, 'sapi_wrong']) {
      const socket = net.connect(Number(new URL(api.url).port), '127.0.0.1');
      await new Promise((resolve) => socket.once('connect', resolve));
      socket.pause();
      let received = '';
      const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      socket.on('error', () => {});
      socket.write(
        `POST /upload HTTP/1.1\r\nHost: x\r\n${key ? `Authorization: Bearer ${key}\r\n` : ''}` +
          `Content-Type: multipart/form-data; boundary=b\r\nContent-Length: ${8 * 1024 * 1024}\r\n\r\n`,
      );
      for (let i = 0; i < 8; i++) {
        socket.write(Buffer.alloc(128 * 1024, 'x'));
        await sleep(50);
      }
      socket.on('data', (d) => (received += String(d)));
      socket.resume();
      await within(closed, 5000, 'close after the answer');
      expect(received).toMatch(/^HTTP\/1\.1 401 /);
      expect(received).toContain('"code":"unauthorized"');
    }
  });
});

describe('per-tenant limits', () => {
  it('uploads per minute: beyond the limit 429 upload_rate_limited with Retry-After, the alias shares it, other tenants unaffected', async () => {
    const a = await t.newTenantKey();
    const b = await t.newTenantKey();
    for (const p of ['/upload', '/uploads', '/upload', '/uploads', '/upload', '/uploads', '/upload', '/uploads']) {
      expect((await upload(api.url, a.key, { path: p, file: { content: CSV } })).status).toBe(202);
    }
    const refused = await upload(api.url, a.key, { path: '/upload', file: { content: CSV } });
    expect(refused.status).toBe(429);
    expect(refused.body.error.code).toBe('upload_rate_limited');
    const retryAfter = Number(refused.headers['retry-after']);
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect((await t.pool.query('SELECT 1 FROM uploads WHERE tenant_id = $1', [a.tenantId])).rowCount).toBe(8);
    expect((await upload(api.url, b.key, { file: { content: CSV } })).status).toBe(202);
  });

  it('POST /auth/token per minute: beyond the limit 429 token_rate_limited with Retry-After', async () => {
    const { key } = await t.newTenantKey();
    for (let i = 0; i < 2; i++) expect((await request(api.url, key, 'POST', '/auth/token')).status).toBe(201);
    const refused = await request(api.url, key, 'POST', '/auth/token');
    expect(refused.status).toBe(429);
    expect(refused.body.error.code).toBe('token_rate_limited');
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
  });

  it('uploads in flight: a third concurrent upload is 429 too_many_uploads_in_flight; a finished one frees its slot', async () => {
    const a = await t.newTenantKey();
    const b = await t.newTenantKey();
    const first = await holdUpload(api.url, a.key, CSV, { sentBytes: 20 });
    const second = await holdUpload(api.url, a.key, CSV, { sentBytes: 20 });
    await sleep(200); // both are being received
    const third = await upload(api.url, a.key, { file: { content: CSV } });
    expect(third.status).toBe(429);
    expect(third.body.error.code).toBe('too_many_uploads_in_flight');
    expect(third.headers['retry-after']).toBe('10');
    expect((await upload(api.url, b.key, { file: { content: CSV } })).status).toBe(202);

    first.send();
    expect((await first.response).status).toBe(202);
    expect((await upload(api.url, a.key, { file: { content: CSV } })).status).toBe(202); // the finished one's slot

    second.destroy(); // a client that leaves frees its slot too
    await second.closed;
    await sleep(300);
    const third2 = await holdUpload(api.url, a.key, CSV, { sentBytes: 20 });
    await sleep(200);
    // One held now: had the departed upload kept its slot, this would be the third.
    expect((await upload(api.url, a.key, { file: { content: CSV } })).status).toBe(202);
    third2.destroy();
  });

  it('open live streams: SSE and WebSocket beyond the limit are 429 too_many_live_streams; closing one frees its slot', async () => {
    const { tenantId, key } = await t.newTenantKey();
    const other = await t.newTenantKey();
    const uploadId = await insertIdleUpload(t, tenantId);
    for (let i = 0; i < 3; i++) {
      // a plain GET of the WebSocket route (no upgrade) is refused and holds no slot
      const plain = await rawRequest(api.url, { method: 'GET', path: `/uploads/${uploadId}/ws`, key });
      expect(plain.body.error.code).toBe('validation_failed');
    }
    const feed = await openSse(api.url, '/events', { key });
    const ws = await openWs(api.url, `/uploads/${uploadId}/ws`, key);
    expect(feed.status).toBe(200);
    expect(ws.rejected).toBeUndefined();

    const refusedSse = await openSse(api.url, `/uploads/${uploadId}/events`, { key });
    expect(refusedSse.status).toBe(429);
    expect(refusedSse.body.error.code).toBe('too_many_live_streams');
    expect(refusedSse.headers['retry-after']).toBe('30');
    const refusedWs = await openWs(api.url, `/uploads/${uploadId}/ws`, key);
    expect(refusedWs.rejected).toEqual({ status: 429, body: { error: { code: 'too_many_live_streams', message: expect.any(String) } } });
    expect((await openSse(api.url, '/events', { key: other.key })).status).toBe(200);

    ws.socket.close();
    expect(await waitUntil(async () => {
      const s = await openSse(api.url, '/events', { key });
      s.close();
      return s.status === 200;
    }, 3000)).toBe(true);
    feed.close();
  });
});
