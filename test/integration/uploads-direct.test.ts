// Direct-to-storage uploads over real sockets: the API hands out presigned part URLs, a plain HTTP
// client (fetch) PUTs the parts straight to the S3-protocol server (s3rver behind our wrapper), the
// API completes the multipart upload and the worker loads it into Postgres.
import { beforeAll, describe, expect, it } from 'vitest';
import { directClient, objectKeyOf, putParts, type DirectStarted } from '../helpers/direct.ts';
import { useApi } from '../helpers/env.ts';
import { generateCsv } from '../helpers/generate.ts';
import { request } from '../helpers/http.ts';
import { countRows, startTestWorker, waitForStatus } from '../helpers/worker.ts';

const MiB = 1024 * 1024;
const MAX_UPLOAD_BYTES = 100 * MiB;
// 5 MiB parts (S3's smallest): ~11 MiB of generated rows is three parts, the last a short one.
const env = useApi({ DIRECT_UPLOAD_PART_MIB: '5', MAX_UPLOAD_BYTES: String(MAX_UPLOAD_BYTES) });
const ROWS = 60_000;
let csv: Buffer;
let me: { tenantId: string; key: string };
let other: { tenantId: string; key: string };

beforeAll(async () => {
  csv = generateCsv(ROWS);
  me = await env.t.newTenantKey();
  other = await env.t.newTenantKey();
});
const { start, startOk, complete, pending, uploadRows, expectNothingEnqueued } = directClient(env, () => me.key);

describe('direct-to-storage uploads', () => {
  it('parts PUT with the presigned URLs by a plain HTTP client, complete → recorded, queued and loaded exactly', async () => {
    const started = await startOk(csv, { callbackUrl: 'https://example.com/hook', maxErrors: 10 });
    expect(started).toMatchObject({ partSizeBytes: 5 * MiB, partCount: 3, completeUrl: `/uploads/${started.uploadId}/complete`, statusUrl: `/uploads/${started.uploadId}` });
    expect(started.parts.map((p) => p.partNumber)).toEqual([1, 2, 3]);
    const hours = (Date.parse(started.expiresAt) - Date.now()) / 3_600_000;
    expect(hours).toBeGreaterThan(23.9);
    expect(hours).toBeLessThanOrEqual(24);
    for (const part of started.parts) {
      const url = new URL(part.url);
      // The store's public endpoint, path-style; a SigV4 query signature valid until the upload expires; no checksum of an empty body.
      expect(url.origin).toBe(env.t.config.s3.endpoint);
      expect(url.pathname).toBe(`/${env.t.config.s3.bucket}/${objectKeyOf(me.tenantId, started.uploadId)}`);
      expect(url.searchParams.get('partNumber')).toBe(String(part.partNumber));
      expect(url.searchParams.get('X-Amz-Algorithm')).toBe('AWS4-HMAC-SHA256');
      expect(Number(url.searchParams.get('X-Amz-Expires'))).toBeGreaterThan(23.9 * 3600);
      expect([...url.searchParams.keys()].filter((k) => /checksum/i.test(k))).toEqual([]);
    }
    // Until completed, there is no upload: the status URL is a 404 and nothing is queued.
    expect((await request(env.api.url, me.key, 'GET', started.statusUrl)).status).toBe(404);
    await expectNothingEnqueued(started.uploadId);

    const etags = await putParts(started, csv);
    const res = await complete(started.uploadId, [...etags].reverse()); // any order
    expect(res.status, res.text).toBe(202);
    expect(res.body).toEqual({ uploadId: started.uploadId, status: 'uploaded', statusUrl: started.statusUrl });
    expect(res.headers.location).toBe(started.statusUrl);
    expect(await pending(started.uploadId)).toEqual([]);
    expect(await uploadRows(started.uploadId)).toMatchObject([
      { tenant_id: me.tenantId, status: 'uploaded', filename: 'events.csv', size_bytes: csv.length, sha256: null, callback_url: 'https://example.com/hook', max_errors: 10 },
    ]);
    expect(await env.t.jobsFor(started.uploadId)).toMatchObject([{ task_identifier: 'process-upload', key: `upload:${started.uploadId}` }]);

    // Completing again answers the same, and enqueues nothing more.
    const again = await complete(started.uploadId, etags);
    expect([again.status, again.headers['idempotent-replayed']]).toEqual([202, 'true']);
    expect(again.body).toEqual(res.body);
    expect(await env.t.jobsFor(started.uploadId)).toHaveLength(1);

    const worker = await startTestWorker(env.t);
    try {
      const state = await waitForStatus(env.t, started.uploadId, ['completed', 'failed'], 120_000);
      expect(state).toMatchObject({ status: 'completed', rows_processed: ROWS, rows_failed: 0, bytes_processed: csv.length });
      expect(await countRows(env.t, started.uploadId)).toEqual({ total: ROWS, distinct: ROWS });
    } finally {
      await worker.stop();
    }
    const status = await request(env.api.url, me.key, 'GET', started.statusUrl);
    expect(status.body).toMatchObject({ uploadId: started.uploadId, status: 'completed', sizeBytes: csv.length, sha256: null, rowsProcessed: ROWS, progress: 1 });
  }, 180_000);

  it('a wrong ETag → 400 invalid_part and nothing enqueued; the upload stays pending and completes with the right ones', async () => {
    const started = await startOk(csv);
    const etags = await putParts(started, csv);
    const wrong = etags.map((p) => (p.partNumber === 2 ? { ...p, etag: '"0123456789abcdef0123456789abcdef"' } : p));
    const res = await complete(started.uploadId, wrong);
    expect([res.status, res.body.error?.code]).toEqual([400, 'invalid_part']);
    await expectNothingEnqueued(started.uploadId);
    expect(await pending(started.uploadId)).toHaveLength(1);
    expect(await env.t.listObjects(objectKeyOf(me.tenantId, started.uploadId))).toEqual([]);

    const fixed = await complete(started.uploadId, etags);
    expect(fixed.status, fixed.text).toBe(202);
    expect(await env.t.jobsFor(started.uploadId)).toHaveLength(1);
  });

  it('a missing part → 400: left out of the list (invalid_parts), or listed but never uploaded (invalid_part)', async () => {
    const started = await startOk(csv);
    const etags = await putParts(started, csv, [1, 2]);
    const left = await complete(started.uploadId, etags);
    expect([left.status, left.body.error?.code, left.body.error?.message]).toEqual([400, 'invalid_parts', 'part 3 of 3 is missing']);
    const twice = await complete(started.uploadId, [...etags, etags[0]]);
    expect([twice.status, twice.body.error?.code]).toEqual([400, 'invalid_parts']);
    const beyond = await complete(started.uploadId, [...etags, { partNumber: 3, etag: etags[0]!.etag }, { partNumber: 4, etag: etags[0]!.etag }]);
    expect([beyond.status, beyond.body.error?.code]).toEqual([400, 'invalid_parts']);

    const neverSent = await complete(started.uploadId, [...etags, { partNumber: 3, etag: etags[0]!.etag }]);
    expect([neverSent.status, neverSent.body.error?.code]).toEqual([400, 'invalid_part']);
    await expectNothingEnqueued(started.uploadId);
    expect(await pending(started.uploadId)).toHaveLength(1);
  });

  it('a stored size other than the declared one → 400 size_mismatch: the object is deleted, nothing enqueued, the upload is over', async () => {
    const started = await startOk(csv, { size: csv.length + 7 }); // still three parts; the last one is 7 bytes short
    const res = await complete(started.uploadId, await putParts(started, csv));
    expect([res.status, res.body.error?.code]).toEqual([400, 'size_mismatch']);
    expect(res.body.error.message).toContain(`${csv.length} bytes; ${csv.length + 7} were declared`);
    await expectNothingEnqueued(started.uploadId);
    expect(await pending(started.uploadId)).toEqual([]);
    expect(await env.t.listObjects(objectKeyOf(me.tenantId, started.uploadId))).toEqual([]);
    expect((await complete(started.uploadId, [{ partNumber: 1, etag: 'x' }])).status).toBe(404);
  });

  it('a file that is not CSV text → 415 and discarded, as on the multipart path', async () => {
    const png = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(3000, 1)]);
    const started = await startOk(png, { filename: 'picture.png' });
    const res = await complete(started.uploadId, await putParts(started, png));
    expect([res.status, res.body.error?.code]).toEqual([415, 'unsupported_media_type']);
    await expectNothingEnqueued(started.uploadId);
    expect(await env.t.listObjects(objectKeyOf(me.tenantId, started.uploadId))).toEqual([]);
  });

  it('two completions at once: both answered 202, one of them a replay; one upload, one job', async () => {
    const small = generateCsv(100);
    const started = await startOk(small);
    const etags = await putParts(started, small);
    const answers = await Promise.all([complete(started.uploadId, etags), complete(started.uploadId, etags)]);
    expect(answers.map((a) => a.status)).toEqual([202, 202]);
    expect(answers.filter((a) => a.headers['idempotent-replayed'] === 'true')).toHaveLength(1);
    expect(await uploadRows(started.uploadId)).toHaveLength(1);
    expect(await env.t.jobsFor(started.uploadId)).toHaveLength(1);
  });

  it('another tenant completing the upload → 404, and the upload is untouched for its owner', async () => {
    const small = generateCsv(100);
    const started = await startOk(small);
    const etags = await putParts(started, small);
    const res = await complete(started.uploadId, etags, other.key);
    expect([res.status, res.body.error?.code]).toEqual([404, 'not_found']);
    expect((await complete('not-a-uuid', etags)).status).toBe(404);
    expect((await complete(crypto.randomUUID(), etags)).status).toBe(404);
    expect(await pending(started.uploadId)).toHaveLength(1);
    expect((await complete(started.uploadId, etags)).status).toBe(202);
  });

  it('refuses a size over MAX_UPLOAD_BYTES (413) and bad options (400) before anything is started', async () => {
    const before = (await env.t.pool.query('SELECT count(*)::int AS n FROM direct_uploads')).rows[0].n;
    const tooBig = await start({ filename: 'big.csv', size: MAX_UPLOAD_BYTES + 1 });
    expect([tooBig.status, tooBig.body.error?.code]).toEqual([413, 'file_too_large']);
    const cases: [Record<string, unknown>, string][] = [
      [{ filename: 'a.csv', size: 0 }, 'validation_failed'],
      [{ filename: 'a.csv' }, 'validation_failed'],
      [{ size: 10 }, 'validation_failed'],
      [{ filename: 'a.csv', size: 1.5 }, 'validation_failed'],
      [{ filename: '', size: 10 }, 'validation_failed'],
      [{ filename: 'a.csv', size: 10, dataset: 'nope' }, 'unknown_dataset'],
      [{ filename: 'a.csv', size: 10, callbackUrl: 'http://127.0.0.1/hook' }, 'invalid_callback_url'],
      [{ filename: 'a.csv', size: 10, maxErrorRatio: 2 }, 'validation_failed'],
    ];
    for (const [body, code] of cases) {
      const res = await start(body);
      expect([res.status, res.body.error?.code], JSON.stringify(body)).toEqual([400, code]);
    }
    expect((await start({ filename: 'a.csv', size: 10 }, { 'idempotency-key': 'ü' })).body.error?.code).toBe('invalid_idempotency_key');
    expect((await env.t.pool.query('SELECT count(*)::int AS n FROM direct_uploads')).rows[0].n).toBe(before);
  });

  it('Idempotency-Key: the same request returns the same pending upload, then its acceptance; another request → 422', async () => {
    const small = generateCsv(50);
    const body = { filename: 'keyed.csv', size: small.length };
    const headers = { 'idempotency-key': 'direct-key-1' };
    const first = await start(body, headers);
    expect(first.status).toBe(201);
    const second = await start(body, headers);
    expect([second.status, second.headers['idempotent-replayed'], second.body.uploadId, second.body.expiresAt]).toEqual([201, 'true', first.body.uploadId, first.body.expiresAt]);
    expect((await start({ ...body, size: small.length + 1 }, headers)).status).toBe(422);
    expect((await env.t.pool.query('SELECT count(*)::int AS n FROM direct_uploads WHERE idempotency_key = $1', ['direct-key-1'])).rows[0].n).toBe(1);

    // The replayed URLs work as well as the first ones.
    const etags = await putParts(second.body as DirectStarted, small);
    expect((await complete(first.body.uploadId, etags)).status).toBe(202);
    const after = await start(body, headers);
    expect([after.status, after.headers['idempotent-replayed']]).toEqual([202, 'true']);
    expect(after.body).toEqual({ uploadId: first.body.uploadId, status: 'uploaded', statusUrl: `/uploads/${first.body.uploadId}` });
  });
});

