// A client's broken upload is a 400 with a stable code, logged at info, and leaves nothing behind:
// no row, no object, no open multipart upload in storage, no claimed Idempotency-Key.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedS3, type EmbeddedS3Handle } from '../../src/storage/embedded-s3.ts';
import { createTestEnv, startApi, type TestEnv } from '../helpers/env.ts';
import { captureLogs, LEVEL } from '../helpers/logs.ts';
import { multipartBody, rawRequest, upload } from '../helpers/http.ts';

const CSV = 'event_id,event_type,occurred_at\n0b7f2c4e-1111-4a2b-a333-123456789abc,invoice.paid,2025-01-01T00:00:00Z\n';
const BIG = CSV + 'x'.repeat(6 * 1024 * 1024); // more than one 5 MiB part: storage has a multipart upload open

let s3Dir: string;
let s3: EmbeddedS3Handle;
let t: TestEnv;
let api: Awaited<ReturnType<typeof startApi>>;
const logs = captureLogs();

beforeAll(async () => {
  // An S3 server of this file's own, so its multipart uploads in progress can be counted on disk.
  s3Dir = await mkdtemp(path.join(os.tmpdir(), 'stream-api-malformed-s3-'));
  s3 = await startEmbeddedS3({ dataDir: s3Dir, port: 0, bucket: 'unused' });
  t = await createTestEnv({ S3_ENDPOINT: s3.endpoint });
  api = await startApi({ ...t, logger: logs.logger });
});
afterAll(async () => {
  await api?.close();
  await t?.close();
  await s3?.stop();
  await rm(s3Dir, { recursive: true, force: true });
});

/** Files s3rver keeps for multipart uploads not completed nor aborted. */
async function openMultipartParts(): Promise<string[]> {
  const all = await readdir(s3.directory, { recursive: true, withFileTypes: true });
  return all.filter((e) => e.isFile() && e.parentPath.includes('._S3rver_uploads')).map((e) => e.name);
}

async function leftBehind(tenantId: string) {
  // The server cleans up after answering: give an abort a moment to reach storage.
  await new Promise((r) => setTimeout(r, 300));
  const rows = await t.pool.query('SELECT count(*)::int AS n FROM uploads WHERE tenant_id = $1', [tenantId]);
  const keys = await t.pool.query('SELECT count(*)::int AS n FROM idempotency_keys WHERE tenant_id = $1', [tenantId]);
  return {
    rows: rows.rows[0].n,
    idempotencyKeys: keys.rows[0].n,
    objects: await t.listObjects(`uploads/${tenantId}/`),
    openParts: await openMultipartParts(),
  };
}

const NOTHING = { rows: 0, idempotencyKeys: 0, objects: [], openParts: [] };

describe('malformed uploads', () => {
  it('multipart/form-data without a boundary, the body a plain CSV: 400 malformed_multipart', async () => {
    const { tenantId, key } = await t.newTenantKey();
    const res = await rawRequest(api.url, { path: '/upload', key, headers: { 'content-type': 'multipart/form-data' }, body: CSV });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ error: { code: 'malformed_multipart', message: expect.stringContaining('oundary') } });
    expect(await leftBehind(tenantId)).toEqual(NOTHING);
  });

  it.each([
    ['a boundary of 300 characters', `multipart/form-data; boundary=${'b'.repeat(300)}`],
    ['an empty boundary', 'multipart/form-data; boundary='],
    ['an empty quoted boundary', 'multipart/form-data; boundary=""'],
  ])('%s: 400 malformed_multipart', async (_name, contentType) => {
    const { tenantId, key } = await t.newTenantKey();
    const res = await rawRequest(api.url, { path: '/upload', key, headers: { 'content-type': contentType }, body: CSV });
    expect(res.status, res.text).toBe(400);
    expect(res.body.error.code).toBe('malformed_multipart');
    expect(await leftBehind(tenantId)).toEqual(NOTHING);
  });

  it.each([
    ['a small file', CSV],
    ['a 6 MiB file (a multipart upload in storage was open)', BIG],
  ])('a body cut before the closing delimiter (%s): 400 upload_aborted, nothing stored', async (_name, content) => {
    const { tenantId, key } = await t.newTenantKey();
    const { boundary, body } = multipartBody(content, { cutBytes: `\r\n--x--\r\n`.length + 20 });
    const res = await rawRequest(api.url, {
      path: '/upload',
      key,
      headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
      body,
    });
    expect(res.status, res.text).toBe(400);
    expect(res.body).toEqual({ error: { code: 'upload_aborted', message: expect.any(String) } });
    expect(await leftBehind(tenantId)).toEqual(NOTHING);
  });

  it('the same cut body with an Idempotency-Key: 400 each time, the key stays free for the complete upload', async () => {
    const { tenantId, key } = await t.newTenantKey();
    const cut = multipartBody(CSV, { cutBytes: 30 });
    const headers = { 'content-type': `multipart/form-data; boundary=${cut.boundary}`, 'idempotency-key': 'batch-7' };
    for (let i = 0; i < 2; i++) {
      const res = await rawRequest(api.url, { path: '/upload', key, headers, body: cut.body });
      expect(res.status, res.text).toBe(400);
      expect(res.body.error.code).toBe('upload_aborted');
    }
    expect(await leftBehind(tenantId)).toEqual(NOTHING);

    const whole = await upload(api.url, key, { file: { content: CSV }, headers: { 'idempotency-key': 'batch-7' } });
    expect(whole.status).toBe(202);
    expect(whole.headers['idempotent-replayed']).toBeUndefined();
  });

  it('a form field longer than the field limit is refused, not cut short and used', async () => {
    const { tenantId, key } = await t.newTenantKey();
    const res = await upload(api.url, key, { file: { content: CSV }, fields: { callbackChannel: 'webhook'.padEnd(5000, ' ') } });
    expect(res.status).toBe(400);
    expect(res.body.error).toEqual({ code: 'validation_failed', message: 'field callbackChannel is too long' });
    expect(await leftBehind(tenantId)).toEqual(NOTHING);
  });

  it('a client that disconnects mid-upload is logged at info, and nothing is left', async () => {
    const { tenantId, key } = await t.newTenantKey();
    const from = logs.lines.length;
    const { boundary, body } = multipartBody(BIG);
    const socket = net.connect(Number(new URL(api.url).port), '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write(
      `POST /upload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key}\r\n` +
        `Content-Type: multipart/form-data; boundary=${boundary}\r\nContent-Length: ${body.length}\r\n\r\n`,
    );
    socket.write(body.subarray(0, 5.5 * 1024 * 1024)); // past the first part: storage has a multipart upload open
    const opened = Date.now() + 5000;
    while ((await openMultipartParts()).length === 0 && Date.now() < opened) await new Promise((r) => setTimeout(r, 50));
    expect(await openMultipartParts()).not.toEqual([]);
    socket.destroy();
    const until = Date.now() + 5000;
    while (!logs.lines.slice(from).some((l) => l.msg === 'client aborted the request') && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const lines = logs.lines.slice(from);
    expect(lines.filter((l) => l.level >= LEVEL.warn)).toEqual([]);
    expect(lines).toContainEqual(expect.objectContaining({ level: LEVEL.info, msg: 'client aborted the request', code: 'upload_aborted' }));
    expect(await leftBehind(tenantId)).toEqual(NOTHING);
  });
});
