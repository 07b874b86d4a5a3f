// Resumable uploads (tus 1.0 at /files) over real sockets, the real S3-protocol server and Postgres:
// tus-js-client uploads end in the same upload resource as POST /uploads; a connection cut midway is
// resumed from HEAD's offset; the stored object is exactly the file (SHA-256); concurrent PATCHes to
// one upload are refused; other tenants see nothing; client mistakes are 4xx with stable codes; a gzip
// file passes the finish sniff and the worker loads it.
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import * as tus from 'tus-js-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorTable } from '../../src/errors.ts';
import type { WorkerHandle } from '../../src/ingest/worker.ts';
import { startApi, useApi } from '../helpers/env.ts';
import { generateCsv } from '../helpers/generate.ts';
import { request } from '../helpers/http.ts';
import { tusCreate, tusMetadata, tusOffset, tusPatch, tusRequest } from '../helpers/tus.ts';
import { countRows, startTestWorker, uploadState, waitForStatus } from '../helpers/worker.ts';

const env = useApi();
let worker: WorkerHandle;
beforeAll(async () => {
  worker = await startTestWorker(env.t);
});
afterAll(async () => {
  await worker?.stop();
});

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** The multipart uploads still open under `uploads/<tenant>/` (parts of unfinished tus uploads). */
async function openUploads(tenantId: string): Promise<string[]> {
  const res = await env.t.s3.send(new ListMultipartUploadsCommand({ Bucket: env.t.config.s3.bucket, Prefix: `uploads/${tenantId}/` }));
  return (res.Uploads ?? []).map((u) => u.Key!);
}

function tusJsUpload(file: Buffer, key: string, opts: Partial<tus.UploadOptions> = {}): Promise<{ upload: tus.Upload; uploadId: string; statusUrl: string }> {
  return new Promise((resolve, reject) => {
    let uploadId = '';
    let statusUrl = '';
    const upload = new tus.Upload(file, {
      endpoint: `${env.api.url}/files/`,
      headers: { Authorization: `Bearer ${key}` },
      metadata: { filename: 'events.csv', maxErrors: '0' },
      retryDelays: [],
      onAfterResponse: (_req, res) => {
        uploadId ||= res.getHeader('Upload-Id') ?? '';
        statusUrl ||= res.getHeader('Upload-Status-Url') ?? '';
      },
      onError: reject,
      onSuccess: () => resolve({ upload, uploadId, statusUrl }),
      ...opts,
    });
    upload.start();
  });
}

describe('tus: resumable uploads', () => {
  it('tus-js-client uploads a CSV in chunks: the upload resource is the multipart one, processed exactly, SHA-256 recorded', async () => {
    const { tenantId, key } = await env.t.newTenantKey();
    const file = generateCsv(60_000, { seed: 1 });
    const progress: number[] = [];
    const { upload, uploadId, statusUrl } = await tusJsUpload(file, key, {
      chunkSize: 4 * 1024 * 1024, // several PATCHes, so parts and the carried-over tail both occur
      onProgress: (sent) => progress.push(sent),
    });
    expect(uploadId).toMatch(/^[0-9a-f-]{36}$/);
    expect(statusUrl).toBe(`/uploads/${uploadId}`);
    expect(upload.url).toBe(`${env.api.url}/files/${uploadId}`);
    expect(progress.at(-1)).toBe(file.length);

    const state = await waitForStatus(env.t, uploadId, ['completed', 'failed']);
    expect(state.status, String(state.error)).toBe('completed');
    expect(state.rows_processed).toBe(60_000);
    expect(await countRows(env.t, uploadId)).toEqual({ total: 60_000, distinct: 60_000 });
    const row = (await env.t.pool.query('SELECT sha256, size_bytes, filename, object_key, max_errors FROM uploads WHERE id = $1', [uploadId])).rows[0];
    expect(row).toMatchObject({ sha256: sha256(file), size_bytes: file.length, filename: 'events.csv', max_errors: 0 });
    expect(row.object_key).toBe(`uploads/${tenantId}/${uploadId}.csv`);

    const status = await request(env.api.url, key, 'GET', statusUrl);
    expect(status.status).toBe(200);
    expect(status.body).toMatchObject({ uploadId, status: 'completed' });
    expect(await openUploads(tenantId)).toEqual([]);
  });

  it('a connection cut at ~50% keeps what arrived; HEAD gives the offset; resuming from it completes with the exact file', async () => {
    const { tenantId, key } = await env.t.newTenantKey();
    const file = generateCsv(120_000, { seed: 2 }); // ~21 MB: two full 8 MiB parts and a tail
    const { path } = await tusCreate(env.api.url, key, file.length);
    const cutAt = Math.floor(file.length / 2);
    const cut = await tusPatch(env.api.url, key, path, 0, file, cutAt);
    expect(cut.status).toBe(0); // the client saw no answer: it vanished

    const offset = await tusOffset(env.api.url, key, path);
    expect(offset).toBeGreaterThan(0);
    expect(offset).toBeLessThanOrEqual(cutAt);
    expect(await openUploads(tenantId)).toHaveLength(1);

    const rest = await tusPatch(env.api.url, key, path, offset, file.subarray(offset));
    expect(rest.status, rest.text).toBe(204);
    expect(Number(rest.headers['upload-offset'])).toBe(file.length);
    const uploadId = String(rest.headers['upload-id']);
    expect(path).toBe(`/files/${uploadId}`);
    expect(rest.headers['upload-status-url']).toBe(`/uploads/${uploadId}`);

    const state = await waitForStatus(env.t, uploadId, ['completed', 'failed']);
    expect(state.status, String(state.error)).toBe('completed');
    expect(await countRows(env.t, uploadId)).toEqual({ total: 120_000, distinct: 120_000 });
    expect((await uploadState(env.t, uploadId)) as unknown as { sha256: string }).toMatchObject({ sha256: sha256(file) });
    expect(await openUploads(tenantId)).toEqual([]);
  });

  it('a final PATCH retried after its answer was lost is answered again with the same upload id, recorded once', async () => {
    const { key } = await env.t.newTenantKey();
    const file = generateCsv(500, { seed: 3 });
    const { path } = await tusCreate(env.api.url, key, file.length);
    const first = await tusPatch(env.api.url, key, path, 0, file);
    expect(first.status).toBe(204);
    expect(await tusOffset(env.api.url, key, path)).toBe(file.length);
    const again = await tusPatch(env.api.url, key, path, file.length, Buffer.alloc(0));
    expect(again.status, again.text).toBe(204);
    expect(again.headers['upload-id']).toBe(first.headers['upload-id']);
    expect((await env.t.jobsFor(String(first.headers['upload-id']))).length).toBeLessThanOrEqual(1);
    const rows = await env.t.pool.query('SELECT count(*)::int AS n FROM uploads WHERE id = $1', [first.headers['upload-id']]);
    expect(rows.rows[0].n).toBe(1);
  });

  it('an idempotency key (metadata or header) replays the first upload for the same file, 422 for another', async () => {
    const { tenantId, key } = await env.t.newTenantKey();
    const file = generateCsv(300, { seed: 7 });
    const send = async (content: Buffer, how: 'metadata' | 'header') => {
      const res = await tusRequest(env.api.url, key, 'POST', '/files', {
        headers: {
          'Upload-Length': String(content.length),
          'Upload-Metadata': tusMetadata({ filename: 'k.csv', ...(how === 'metadata' ? { idempotencyKey: 'order-42' } : {}) }),
          ...(how === 'header' ? { 'Idempotency-Key': 'order-42' } : {}),
        },
      });
      return tusPatch(env.api.url, key, new URL(String(res.headers.location)).pathname, 0, content);
    };
    const first = await send(file, 'metadata');
    const again = await send(file, 'header');
    expect(again.status).toBe(204);
    expect(again.headers['upload-id']).toBe(first.headers['upload-id']);
    expect(again.headers['idempotent-replayed']).toBe('true');
    const other = await send(generateCsv(300, { seed: 8 }), 'metadata');
    expect(other.status).toBe(422);
    expect(other.error?.code).toBe('idempotency_key_reused');
    expect((await env.t.pool.query('SELECT id FROM uploads WHERE tenant_id = $1', [tenantId])).rows).toEqual([{ id: first.headers['upload-id'] }]);
    // The replayed and the refused uploads left no object (the first's is the worker's to delete).
    const objects = await env.t.listObjects(`uploads/${tenantId}/`);
    expect(objects.filter((k) => k.endsWith('.csv') && !k.includes(String(first.headers['upload-id'])))).toEqual([]);
  });

  it('a second PATCH while one is writing is refused (409 at the offset it no longer matches); the stored bytes are one writer\'s', async () => {
    const { key } = await env.t.newTenantKey();
    const file = generateCsv(60_000, { seed: 4 });
    const { path } = await tusCreate(env.api.url, key, file.length);
    // A: a client that sends 3 MB and then stalls, connection open (its request holds the upload).
    const stalled = tusPatchStalled(env.api.url, key, path, file, 3 * 1024 * 1024);
    await new Promise((r) => setTimeout(r, 500));
    // B: the same offset at the same time. @tus/server asks A to stop, then B finds the offset moved.
    // (a short body: a refused request is answered before its body is read, then the connection closes)
    const second = await tusPatch(env.api.url, key, path, 0, file.subarray(0, 1000));
    expect(second.status, second.text).toBe(409);
    expect(second.error?.code).toBe('upload_offset_conflict');
    const first = await stalled;
    expect(first.status).toBe(204);
    const offset = await tusOffset(env.api.url, key, path);
    expect(offset).toBe(Number(first.headers['upload-offset']));
    expect(offset).toBe(3 * 1024 * 1024);
    const rest = await tusPatch(env.api.url, key, path, offset, file.subarray(offset));
    expect(rest.status).toBe(204);
    const row = (await env.t.pool.query('SELECT sha256 FROM uploads WHERE id = $1', [rest.headers['upload-id']])).rows[0];
    expect(row.sha256).toBe(sha256(file));
  });

  it('with two API instances, a PATCH to an upload the other instance is writing gets 423 upload_locked', async () => {
    const other = await startApi(env.t);
    try {
      const { key } = await env.t.newTenantKey();
      const file = generateCsv(60_000, { seed: 5 });
      const { path } = await tusCreate(env.api.url, key, file.length);
      const stalled = tusPatchStalled(env.api.url, key, path, file, 1024 * 1024, 5000);
      await new Promise((r) => setTimeout(r, 500));
      const refused = await tusPatch(other.url, key, path, 0, file.subarray(0, 1000));
      expect(refused.status, refused.text).toBe(423);
      expect(refused.error?.code).toBe('upload_locked');
      await stalled; // the stalled writer gives up (its connection cut) and lets go of the upload
      // Once the writer is gone, the other instance serves the upload, at the offset the writer left.
      expect([0, 1024 * 1024]).toContain(await tusOffset(other.url, key, path));
    } finally {
      await other.close();
    }
  });

  it('PATCHes alternating between two API instances (A, B, A): the hash A carried is not reused past B\'s bytes; SHA-256 exact', async () => {
    const other = await startApi(env.t);
    try {
      const { key } = await env.t.newTenantKey();
      const file = generateCsv(60_000, { seed: 8 });
      const { path } = await tusCreate(env.api.url, key, file.length);
      const [x, y] = [Math.floor(file.length / 3), Math.floor((2 * file.length) / 3)];
      let offset = 0;
      for (const [url, end] of [[env.api.url, x], [other.url, y], [env.api.url, file.length]] as const) {
        const res = await tusPatch(url, key, path, offset, file.subarray(offset, end));
        expect(res.status, res.text).toBe(204);
        offset = Number(res.headers['upload-offset']);
        expect(offset).toBe(end);
      }
      const uploadId = path.split('/').pop()!;
      const row = (await env.t.pool.query('SELECT sha256, size_bytes FROM uploads WHERE id = $1', [uploadId])).rows[0];
      expect(row).toEqual({ sha256: sha256(file), size_bytes: file.length });
    } finally {
      await other.close();
    }
  });

  it("another tenant's HEAD, PATCH and DELETE are 404; the owner's upload is untouched", async () => {
    const owner = await env.t.newTenantKey();
    const stranger = await env.t.newTenantKey();
    const file = generateCsv(1000, { seed: 6 });
    const { path } = await tusCreate(env.api.url, owner.key, file.length);
    expect((await tusPatch(env.api.url, owner.key, path, 0, file.subarray(0, 1000))).status).toBe(204);
    for (const method of ['HEAD', 'PATCH', 'DELETE']) {
      const res = await tusRequest(env.api.url, stranger.key, method, path, {
        headers: { 'Upload-Offset': '1000', 'Content-Type': 'application/offset+octet-stream' },
        body: method === 'PATCH' ? file.subarray(1000, 1100) : Buffer.alloc(0),
      });
      expect(res.status, `${method} ${res.text}`).toBe(404);
      if (method !== 'HEAD') expect(res.error?.code).toBe('not_found');
    }
    expect(await tusOffset(env.api.url, owner.key, path)).toBe(1000);
    // Termination by the owner: parts aborted, HEAD 404.
    const del = await tusRequest(env.api.url, owner.key, 'DELETE', path);
    expect(del.status).toBe(204);
    expect((await tusRequest(env.api.url, owner.key, 'HEAD', path)).status).toBe(404);
    expect(await openUploads(owner.tenantId)).toEqual([]);
  });

  it('client mistakes are 4xx with stable codes of the error table, in the API error shape', async () => {
    const { key } = await env.t.newTenantKey();
    const { path } = await tusCreate(env.api.url, key, 100);
    const cases: { name: string; res: Promise<Awaited<ReturnType<typeof tusRequest>>>; code: string }[] = [
      { name: 'no Tus-Resumable', res: tusRequest(env.api.url, key, 'POST', '/files', { headers: { 'Tus-Resumable': '', 'Upload-Length': '10' } }), code: 'tus_version_unsupported' },
      { name: 'no key', res: tusRequest(env.api.url, null, 'POST', '/files', { headers: { 'Upload-Length': '10' } }), code: 'unauthorized' },
      { name: 'no length', res: tusRequest(env.api.url, key, 'POST', '/files'), code: 'tus_invalid_request' },
      { name: 'bad length', res: tusRequest(env.api.url, key, 'POST', '/files', { headers: { 'Upload-Length': '-5' } }), code: 'tus_invalid_request' },
      { name: 'over MAX_UPLOAD_BYTES', res: tusRequest(env.api.url, key, 'POST', '/files', { headers: { 'Upload-Length': String(env.t.config.maxUploadBytes + 1) } }), code: 'file_too_large' },
      { name: 'bad metadata', res: tusRequest(env.api.url, key, 'POST', '/files', { headers: { 'Upload-Length': '10', 'Upload-Metadata': 'a b c,,' } }), code: 'tus_invalid_request' },
      { name: 'private callback', res: tusRequest(env.api.url, key, 'POST', '/files', { headers: { 'Upload-Length': '10', 'Upload-Metadata': tusMetadata({ callbackUrl: 'http://127.0.0.1/hook' }) } }), code: 'invalid_callback_url' },
      { name: 'unknown dataset', res: tusRequest(env.api.url, key, 'POST', '/files', { headers: { 'Upload-Length': '10', 'Upload-Metadata': tusMetadata({ dataset: 'nope' }) } }), code: 'unknown_dataset' },
      { name: 'bad idempotency key', res: tusRequest(env.api.url, key, 'POST', '/files', { headers: { 'Upload-Length': '10', 'Idempotency-Key': 'ü' } }), code: 'invalid_idempotency_key' },
      { name: 'wrong offset', res: tusPatch(env.api.url, key, path, 7, Buffer.from('abc')), code: 'upload_offset_conflict' },
      { name: 'no offset', res: tusRequest(env.api.url, key, 'PATCH', path, { headers: { 'Content-Type': 'application/offset+octet-stream' }, body: Buffer.from('a') }), code: 'tus_invalid_request' },
      { name: 'bytes past the length', res: tusPatch(env.api.url, key, path, 0, Buffer.alloc(101, 'a')), code: 'upload_length_exceeded' },
      { name: 'not a uuid', res: tusPatch(env.api.url, key, '/files/not-a-uuid', 0, Buffer.from('a')), code: 'not_found' },
      { name: 'no such upload', res: tusPatch(env.api.url, key, '/files/00000000-0000-4000-8000-000000000000', 0, Buffer.from('a')), code: 'not_found' },
      { name: 'concatenation', res: tusRequest(env.api.url, key, 'POST', '/files', { headers: { 'Upload-Concat': 'partial', 'Upload-Length': '10' } }), code: 'tus_invalid_request' },
    ];
    for (const c of cases) {
      const res = await c.res;
      expect(res.error?.code, `${c.name}: ${res.status} ${res.text}`).toBe(c.code);
      expect(res.status, c.name).toBe(errorTable[c.code as keyof typeof errorTable].status);
      expect(res.headers['content-type'], c.name).toMatch(/^application\/json/);
    }
    // None of it moved the real upload.
    expect(await tusOffset(env.api.url, key, path)).toBe(0);
    const options = await tusRequest(env.api.url, null, 'OPTIONS', '/files');
    expect(options.status).toBe(204);
    expect(options.headers['tus-version']).toBe('1.0.0');
    expect(options.headers['tus-max-size']).toBe(String(env.t.config.maxUploadBytes));
    expect(options.headers['tus-extension']).toContain('termination');
  });

  it('a gzip file (found by its magic bytes, named .csv) passes the finish sniff and loads exactly: the worker decompresses', async () => {
    const { key } = await env.t.newTenantKey();
    const csv = generateCsv(40_000, { seed: 7 });
    const packed = gzipSync(csv);
    // PATCHes of 512 KiB: under S3's part minimum, so the bytes also pass through the carried-over tail
    const { uploadId } = await tusJsUpload(packed, key, { chunkSize: 512 * 1024 });
    expect(packed.length).toBeGreaterThan(2 * 512 * 1024);

    const state = await waitForStatus(env.t, uploadId, ['completed', 'failed']);
    expect(state.status, String(state.error)).toBe('completed');
    expect(state.rows_processed).toBe(40_000);
    expect(await countRows(env.t, uploadId)).toEqual({ total: 40_000, distinct: 40_000 });
    const status = await request(env.api.url, key, 'GET', `/uploads/${uploadId}`);
    expect(status.body).toMatchObject({
      compression: 'gzip', sizeBytes: packed.length, sha256: sha256(packed), rowsFailed: 0, uncompressedBytesProcessed: csv.length,
    });
  });

  it('a file that is not CSV text is refused when complete (415) and nothing stays stored', async () => {
    const { tenantId, key } = await env.t.newTenantKey();
    const png = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47]), Buffer.alloc(2000, 1)]);
    const { path } = await tusCreate(env.api.url, key, png.length);
    const res = await tusPatch(env.api.url, key, path, 0, png);
    expect(res.status).toBe(415);
    expect(res.error?.code).toBe('unsupported_media_type');
    expect((await env.t.listObjects(`uploads/${tenantId}/`)).filter((k) => k.endsWith('.csv'))).toEqual([]);
    expect((await env.t.pool.query('SELECT 1 FROM uploads WHERE tenant_id = $1', [tenantId])).rowCount).toBe(0);
  });
});

/** A PATCH that sends `bytes` of `file` and then stalls until the server answers (or `giveUpMs`). */
function tusPatchStalled(baseUrl: string, key: string, path: string, file: Buffer, bytes: number, giveUpMs = 10_000) {
  return new Promise<{ status: number; headers: Record<string, string | string[] | undefined> }>((resolve, reject) => {
    import('node:http').then(({ default: http }) => {
      const req = http.request(new URL(path, baseUrl), {
        method: 'PATCH',
        agent: false,
        headers: {
          Authorization: `Bearer ${key}`,
          'Tus-Resumable': '1.0.0',
          'Upload-Offset': '0',
          'Content-Type': 'application/offset+octet-stream',
          'Content-Length': String(file.length),
        },
      });
      const timer = setTimeout(() => req.destroy(), giveUpMs);
      req.on('error', () => resolve({ status: 0, headers: {} })); // cut by us after giveUpMs
      req.on('response', (res) => {
        res.resume();
        res.on('end', () => {
          clearTimeout(timer);
          req.destroy();
          resolve({ status: res.statusCode ?? 0, headers: res.headers });
        });
      });
      req.write(file.subarray(0, bytes));
    }, reject);
  });
}
