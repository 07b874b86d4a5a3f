// Query parameters are checked by the route schemas (TypeBox), not by hand in handlers: the OpenAPI
// document shows their real types, and a bad value is a 400 validation_failed that names it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestEnv, startApi, type TestEnv } from '../helpers/env.ts';
import { request, upload } from '../helpers/http.ts';

let t: TestEnv;
let api: Awaited<ReturnType<typeof startApi>>;
let tenant: { tenantId: string; key: string };
let uploadId: string;
let spec: { paths: Record<string, Record<string, { parameters?: { name: string; in: string; schema: Record<string, unknown> }[] }>> };

beforeAll(async () => {
  t = await createTestEnv();
  api = await startApi(t);
  tenant = await t.newTenantKey();
  uploadId = (await upload(api.url, tenant.key, { file: { content: 'a,b\n1,2\n' } })).body.uploadId;
  spec = (await request(api.url, null, 'GET', '/openapi.json')).body;
});
afterAll(async () => {
  await api?.close();
  await t?.close();
});

function queryParam(path: string, method: string, name: string): Record<string, unknown> {
  const param = spec.paths[path]?.[method]?.parameters?.find((p) => p.in === 'query' && p.name === name);
  if (!param) throw new Error(`${method} ${path} has no query parameter ${name}`);
  return param.schema;
}

/** The values of a union of literals (OpenAPI 3.0 has no `const`: @fastify/swagger writes one-value enums). */
const literals = (schema: Record<string, unknown>) =>
  (schema.anyOf as { const?: string; enum?: string[] }[]).map((s) => s.const ?? s.enum?.[0]);

describe('query validation by schema', () => {
  it('the OpenAPI document shows integers with bounds and statuses as literals', () => {
    expect(queryParam('/uploads', 'get', 'limit')).toMatchObject({ type: 'integer', minimum: 1, maximum: 100, default: 20 });
    expect(literals(queryParam('/uploads', 'get', 'status'))).toEqual(['uploaded', 'processing', 'completed', 'failed']);
    expect(queryParam('/deliveries', 'get', 'limit')).toMatchObject({ type: 'integer', minimum: 1, maximum: 100 });
    expect(literals(queryParam('/deliveries', 'get', 'status'))).toEqual(['pending', 'sent', 'failed', 'skipped']);
    expect(queryParam('/uploads/{id}/errors', 'get', 'limit')).toMatchObject({ type: 'integer', minimum: 1, maximum: 1000 });
    expect(queryParam('/uploads/{id}/errors', 'get', 'cursor')).toMatchObject({ type: 'integer', minimum: 0 });
    expect(queryParam('/upload', 'post', 'maxErrors')).toMatchObject({ type: 'integer', minimum: 0 });
    expect(queryParam('/upload', 'post', 'maxErrorRatio')).toMatchObject({ type: 'number', minimum: 0, maximum: 1 });
    expect(literals(queryParam('/upload', 'post', 'callbackChannel'))).toEqual(['webhook', 'slack']);
  });

  it.each([
    ['/uploads?limit=0', 'limit must be >= 1'],
    ['/uploads?limit=101', 'limit must be <= 100'],
    ['/uploads?limit=abc', 'limit must be integer'],
    ['/uploads?limit=1.5', 'limit must be integer'],
    ['/uploads?limit=1&limit=2', 'limit must be integer'],
    ['/uploads?limit=1e309', 'limit must be a finite number'],
    ['/uploads/:id/errors?cursor=1e309', 'cursor must be a finite number'],
    ['/uploads?status=bogus', 'status must be one of uploaded, processing, completed, failed'],
    ['/uploads?cursor=%25%25', 'cursor must match pattern'],
    ['/uploads?cursor=abc', 'cursor is invalid'],
    ['/deliveries?status=lost', 'status must be one of pending, sent, failed, skipped'],
    ['/deliveries?limit=-3', 'limit must be >= 1'],
    ['/uploads/:id/errors?limit=1001', 'limit must be <= 1000'],
    ['/uploads/:id/errors?cursor=-1', 'cursor must be >= 0'],
    ['/uploads/:id/errors?cursor=x', 'cursor must be integer'],
  ])('GET %s → 400 validation_failed: %s', async (path, message) => {
    const res = await request(api.url, tenant.key, 'GET', path.replace(':id', uploadId));
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ error: { code: 'validation_failed', message: expect.stringContaining(message) } });
  });

  it.each([
    ['/uploads?limit=5&status=uploaded', 200],
    ['/deliveries?limit=100&status=failed', 200],
    ['/uploads/:id/errors?limit=1000&cursor=0', 200],
  ])('GET %s → %i', async (path, status) => {
    const res = await request(api.url, tenant.key, 'GET', path.replace(':id', uploadId));
    expect(res.status, res.text).toBe(status);
  });

  it.each([
    ['maxErrors=-1', 'maxErrors must be >= 0'],
    ['maxErrorRatio=2', 'maxErrorRatio must be <= 1'],
    ['callbackChannel=sms', 'callbackChannel must be one of webhook, slack'],
    ['maxErrorRatio=-1e309', 'maxErrorRatio must be a finite number'],
  ])('POST /upload?%s → 400 before the file is read, nothing stored', async (query, message) => {
    const fresh = await t.newTenantKey();
    const res = await upload(api.url, fresh.key, { file: { content: 'a,b\n1,2\n' }, query });
    expect(res.status).toBe(400);
    expect(res.body.error).toEqual({ code: 'validation_failed', message: expect.stringContaining(message) });
    expect(await t.listObjects(`uploads/${fresh.tenantId}/`)).toEqual([]);
  });

  it('query options of the right type reach the upload as before', async () => {
    const res = await upload(api.url, tenant.key, { file: { content: 'a,b\n1,2\n' }, query: 'maxErrors=5&maxErrorRatio=0.25&callbackChannel=slack' });
    expect(res.status).toBe(202);
    const { rows } = await t.pool.query('SELECT max_errors, max_error_ratio, callback_channel FROM uploads WHERE id = $1', [res.body.uploadId]);
    expect(rows[0]).toEqual({ max_errors: 5, max_error_ratio: 0.25, callback_channel: 'slack' });
  });
});
