// POST /upload over a real socket into the real S3-protocol server and Postgres.
import { createHash } from 'node:crypto';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestEnv, startApi, type TestEnv } from '../helpers/env.ts';
import { request, upload } from '../helpers/http.ts';

const CSV = 'event_id,event_type,occurred_at\n0b7f2c4e-1111-4a2b-a333-123456789abc,invoice.paid,2025-01-01T00:00:00Z\n';

let t: TestEnv;
let api: Awaited<ReturnType<typeof startApi>>;
let tenant: { tenantId: string; key: string };

beforeAll(async () => {
  t = await createTestEnv();
  api = await startApi(t);
  tenant = await t.newTenantKey();
});
afterAll(async () => {
  await api?.close();
  await t?.close();
});

async function uploadRows(tenantId: string) {
  const { rows } = await t.pool.query('SELECT * FROM uploads WHERE tenant_id = $1', [tenantId]);
  return rows;
}

async function objectBytes(key: string): Promise<Buffer> {
  const res = await t.s3.send(new GetObjectCommand({ Bucket: t.config.s3.bucket, Key: key }));
  return Buffer.from(await res.Body!.transformToByteArray());
}

describe('POST /upload', () => {
  it('stores the file, records the upload and enqueues its job in one go', async () => {
    const res = await upload(api.url, tenant.key, {
      file: { content: CSV, filename: 'events.csv' },
      query: 'callbackUrl=' + encodeURIComponent('https://example.com/hook?x=1'),
    });
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ uploadId: expect.any(String), status: 'uploaded', statusUrl: `/uploads/${res.body.uploadId}` });
    expect(res.headers.location).toBe(`/uploads/${res.body.uploadId}`);

    const { rows } = await t.pool.query('SELECT * FROM uploads WHERE id = $1', [res.body.uploadId]);
    expect(rows).toHaveLength(1);
    const row = rows[0];
    expect(row).toMatchObject({
      tenant_id: tenant.tenantId,
      status: 'uploaded',
      filename: 'events.csv',
      size_bytes: Buffer.byteLength(CSV),
      sha256: createHash('sha256').update(CSV).digest('hex'),
      dataset: 'webhook_events',
      callback_url: 'https://example.com/hook?x=1',
    });
    expect((await objectBytes(row.object_key)).toString()).toBe(CSV);

    expect(await t.jobsFor(res.body.uploadId)).toMatchObject([
      { task_identifier: 'process-upload', key: `upload:${res.body.uploadId}`, locked_at: null },
    ]);

    const status = await request(api.url, tenant.key, 'GET', res.body.statusUrl);
    expect(status.status).toBe(200);
    expect(status.headers['retry-after']).toBe('2');
    expect(status.body).toMatchObject({ uploadId: res.body.uploadId, status: 'uploaded', rowsProcessed: 0, startedAt: null });
    const spec = await request(api.url, tenant.key, 'GET', `/upload/${res.body.uploadId}/status`);
    expect(spec.body).toEqual(status.body);
  });

  it('accepts form fields before or after the file, and /uploads as well as /upload', async () => {
    const res = await upload(api.url, tenant.key, {
      path: '/uploads',
      fields: { dataset: 'webhook_events' },
      file: { content: CSV },
      trailingFields: { callbackUrl: 'http://receiver.example/cb', maxErrors: '5', maxErrorRatio: '0.5' },
    });
    expect(res.status).toBe(202);
    const { rows } = await t.pool.query('SELECT callback_url, max_errors, max_error_ratio FROM uploads WHERE id = $1', [res.body.uploadId]);
    expect(rows[0]).toEqual({ callback_url: 'http://receiver.example/cb', max_errors: 5, max_error_ratio: 0.5 });
  });

  it.each([
    ['ftp://example.com/x', 'query'],
    ['not a url', 'field'],
    ['https://user:secret@example.com/hook', 'field'],
    ['/relative/path', 'query'],
    ['https://example.com/<2100 chars>', 'field'],
    ['javascript:alert(1)', 'trailing'],
  ])('rejects callbackUrl %s (%s) with 400 naming the field, and stores nothing', async (value, where) => {
    const before = await t.listObjects(`uploads/${tenant.tenantId}/`);
    const bad = value.replace('<2100 chars>', 'a'.repeat(2100));
    const res = await upload(api.url, tenant.key, {
      file: { content: CSV },
      ...(where === 'query' ? { query: 'callbackUrl=' + encodeURIComponent(bad) } : {}),
      ...(where === 'field' ? { fields: { callbackUrl: bad } } : {}),
      ...(where === 'trailing' ? { trailingFields: { callbackUrl: bad } } : {}),
    });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('invalid_callback_url');
    expect(res.body.error.message).toContain('callbackUrl');
    expect(await t.listObjects(`uploads/${tenant.tenantId}/`)).toEqual(before);
  });

  it('rejects an unknown dataset with 400', async () => {
    const res = await upload(api.url, tenant.key, { file: { content: CSV }, fields: { dataset: 'nope' } });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('unknown_dataset');
  });

  it.each([
    ['a PNG', Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(2000, 7)])],
    ['a file with NUL bytes', Buffer.from('a,b\n1,\u0000\n')],
  ])('rejects %s with 415 and stores nothing', async (_name, content) => {
    const fresh = await t.newTenantKey();
    const res = await upload(api.url, fresh.key, { file: { content, filename: 'x.csv' } });
    expect(res.status).toBe(415);
    expect(res.body.error.code).toBe('unsupported_media_type');
    expect(await uploadRows(fresh.tenantId)).toHaveLength(0);
    expect(await t.listObjects(`uploads/${fresh.tenantId}/`)).toEqual([]);
  });

  it('requires a file part', async () => {
    const res = await upload(api.url, tenant.key, { fields: { dataset: 'webhook_events' } });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('missing_file');
  });

  it('answers 401 JSON without a key or with a wrong one, and stores nothing', async () => {
    for (const key of [null, 'sapi_wrong', 'garbage']) {
      const res = await upload(api.url, key, { file: { content: CSV } });
      expect(res.status).toBe(401);
      expect(res.body).toEqual({ error: { code: 'unauthorized', message: expect.any(String) } });
    }
  });

  it('replays the first response for a reused Idempotency-Key and stores nothing new', async () => {
    const fresh = await t.newTenantKey();
    const headers = { 'idempotency-key': 'batch-2025-01-01' };
    const first = await upload(api.url, fresh.key, { file: { content: CSV }, headers });
    const second = await upload(api.url, fresh.key, { file: { content: CSV }, headers });
    expect(first.status).toBe(202);
    expect(second.status).toBe(202);
    expect(second.body).toEqual(first.body);
    expect(second.headers['idempotent-replayed']).toBe('true');
    expect(await uploadRows(fresh.tenantId)).toHaveLength(1);
    expect(await t.listObjects(`uploads/${fresh.tenantId}/`)).toHaveLength(1);

    const different = await upload(api.url, fresh.key, { file: { content: CSV + CSV.split('\n')[1] + '\n' }, headers });
    expect(different.status).toBe(422);
    expect(different.body.error.code).toBe('idempotency_key_reused');
    expect(await uploadRows(fresh.tenantId)).toHaveLength(1);
    expect(await t.listObjects(`uploads/${fresh.tenantId}/`)).toHaveLength(1);

    // The key belongs to the tenant: another tenant using it gets an upload of its own.
    const other = await t.newTenantKey();
    const theirs = await upload(api.url, other.key, { file: { content: CSV }, headers });
    expect(theirs.status).toBe(202);
    expect(theirs.body.uploadId).not.toBe(first.body.uploadId);
  });

  it('gives concurrent requests with the same Idempotency-Key one upload', async () => {
    const fresh = await t.newTenantKey();
    const headers = { 'idempotency-key': 'concurrent' };
    const results = await Promise.all([1, 2, 3].map(() => upload(api.url, fresh.key, { file: { content: CSV }, headers })));
    expect(results.map((r) => r.status)).toEqual([202, 202, 202]);
    expect(new Set(results.map((r) => r.body.uploadId)).size).toBe(1);
    expect(await uploadRows(fresh.tenantId)).toHaveLength(1);
    expect(await t.listObjects(`uploads/${fresh.tenantId}/`)).toHaveLength(1);
  });

  it('leaves neither a row nor an object when enqueueing the job fails', async () => {
    const fresh = await t.newTenantKey();
    // Fault injection through graphile-worker's public function: add_job runs read-only (as on a
    // standby after a failover), so its writes fail after the upload row was inserted in the same
    // transaction.
    const { rows: before } = await t.pool.query<{ proconfig: string[] | null }>(
      `SELECT proconfig FROM pg_proc WHERE proname = 'add_job' AND pronamespace = 'graphile_worker'::regnamespace`,
    );
    expect(before).toEqual([{ proconfig: null }]); // so RESET ALL below restores it exactly
    await t.pool.query('ALTER FUNCTION graphile_worker.add_job SET transaction_read_only = on');
    try {
      const res = await upload(api.url, fresh.key, { file: { content: CSV } });
      expect(res.status).toBe(500);
      expect(res.body).toEqual({ error: { code: 'internal', message: 'internal error' } });
      expect(res.text).not.toContain('read-only');
      expect(await uploadRows(fresh.tenantId)).toHaveLength(0);
      expect(await t.listObjects(`uploads/${fresh.tenantId}/`)).toEqual([]);
    } finally {
      // RESET ALL: recent PostgreSQL minor releases (15.20 here) refuse `RESET transaction_read_only`.
      await t.pool.query('ALTER FUNCTION graphile_worker.add_job RESET ALL');
    }
    // The fault is gone: the same upload goes through.
    expect((await upload(api.url, fresh.key, { file: { content: CSV } })).status).toBe(202);
  });
});
