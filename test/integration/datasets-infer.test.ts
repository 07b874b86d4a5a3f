// POST /datasets/infer over real HTTP, PostgreSQL and the embedded object store: a proposal from the first
// MiB of a file (the body, or a stored upload), created unchanged with POST /datasets, the whole file
// uploaded and loaded by the real worker into the tenant's table, and the rows queried with their types;
// another tenant's upload is a 404; bad bodies are 4xx with stable codes.
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WorkerHandle } from '../../src/ingest/worker.ts';
import { useApi } from '../helpers/env.ts';
import { FIXTURES_DIR } from '../helpers/infer-fixtures.ts';
import { multipartBody, rawRequest, request, sendJson, upload, type HttpResult } from '../helpers/http.ts';
import { startTestWorker, waitForStatus } from '../helpers/worker.ts';

const ctx = useApi();
let key: string;
let tenantId: string;
let otherKey: string;
let worker: WorkerHandle | undefined;

beforeAll(async () => {
  ({ key, tenantId } = await ctx.t.newTenantKey());
  ({ key: otherKey } = await ctx.t.newTenantKey());
});
afterAll(async () => {
  await worker?.stop();
});

const url = () => ctx.api.url;
const table = (name: string) => `"t_${tenantId.replaceAll('-', '')}"."${name}"`;

/** POST /datasets/infer with `body` as text/csv (or another content type). */
function inferBody(body: Buffer | string, opts: { name?: string; contentType?: string; k?: string; headers?: Record<string, string> } = {}): Promise<HttpResult> {
  const query = opts.name === undefined ? '' : `?name=${encodeURIComponent(opts.name)}`;
  return rawRequest(url(), {
    path: `/datasets/infer${query}`,
    key: opts.k ?? key,
    headers: { 'content-type': opts.contentType ?? 'text/csv', ...opts.headers },
    body,
  });
}

/** A CSV of `rows` orders (about 100 bytes a row) with quoted commas and line breaks, empty optional fields. */
function ordersCsv(rows: number): string {
  const lines = ['Order ID,Customer,Quantity,Unit Price,Ordered At,Paid,Shipped On,Notes'];
  for (let i = 0; i < rows; i++) {
    const id = `6f1c2a90-3b1e-4d7a-9c0e-${String(i).padStart(12, '0')}`;
    const day = String(1 + (i % 28)).padStart(2, '0');
    const notes = i % 7 === 0 ? '"gift wrap, please"' : i % 11 === 0 ? '"call before\ndelivery"' : '';
    lines.push(`${id},Customer ${i},${1 + (i % 9)},${(i % 500) + 0.25},2025-03-${day}T09:${String(i % 60).padStart(2, '0')}:00Z,${i % 2 === 0},${i % 3 === 0 ? '' : `2025-04-${day}`},${notes}`);
  }
  return `${lines.join('\n')}\n`;
}

describe('a proposal from a stored upload', () => {
  it('samples the tenant\'s own upload; another tenant\'s (or an unknown id) is a 404', async () => {
    const csv = await readFile(path.join(FIXTURES_DIR, 'us-sales.csv'));
    const stored = await upload(url(), key, { file: { content: csv, filename: 'us-sales.csv' } });
    expect(stored.status).toBe(202);
    const uploadId = stored.body.uploadId as string;

    const res = await sendJson(url(), key, 'POST', '/datasets/infer?name=sales', { uploadId });
    expect(res.status).toBe(200);
    expect(res.body.definition.name).toBe('sales');
    expect(res.body.dialect).toMatchObject({ delimiter: ',', dateFormat: 'MM/DD/YYYY' });
    expect(res.body.columns.map((c: { name: string; type: string }) => `${c.name}:${c.type}`)).toContain('sale_date:date');
    expect(res.body.sampledRows).toBe(6);

    const named = await sendJson(url(), key, 'POST', '/datasets/infer', { uploadId });
    expect(named.body.definition.name).toBe('us_sales');

    for (const [k, id] of [[otherKey, uploadId], [key, randomUUID()], [key, 'not-a-uuid']] as const) {
      const refused = await sendJson(url(), k, 'POST', '/datasets/infer', { uploadId: id });
      expect(refused.status).toBe(404);
      expect(refused.body.error.code).toBe('not_found');
    }
  });
});

describe('infer → create → upload → query', () => {
  it('creates the proposed dataset unchanged and loads the whole file into it', async () => {
    const csv = ordersCsv(24_000); // ~2.4 MB: the service judges its first MiB
    expect(csv.length).toBeGreaterThan(2 * 1024 * 1024);
    const inferred = await inferBody(csv, { name: 'Shop Orders' });
    expect(inferred.status).toBe(200);
    const { definition, columns, dialect, sampledRows, sampleBytes } = inferred.body;
    expect(sampleBytes).toBe(1024 * 1024);
    expect(dialect).toMatchObject({ delimiter: ',', encoding: 'utf-8', quotes: 'strict', cutLine: true });
    expect(sampledRows).toBeGreaterThan(5000);
    expect(sampledRows).toBeLessThan(24_000);
    expect(columns.map((c: { name: string; type: string; required: boolean }) => [c.name, c.type, c.required])).toEqual([
      ['order_id', 'uuid', true],
      ['customer', 'text', true],
      ['quantity', 'integer', true],
      ['unit_price', 'numeric(12,2)', true],
      ['ordered_at', 'timestamptz', true],
      ['paid', 'boolean', true],
      ['shipped_on', 'date', false],
      ['notes', 'text', false],
    ]);
    expect(definition.columns[0]).toEqual({ name: 'order_id', type: 'uuid', required: true, aliases: ['Order ID'] });

    const created = await sendJson(url(), key, 'POST', '/datasets', definition);
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name: 'shop_orders', version: 1 });

    const loaded = await upload(url(), key, { file: { content: csv, filename: 'orders.csv' }, fields: { dataset: 'shop_orders' } });
    expect(loaded.status).toBe(202);
    worker = await startTestWorker(ctx.t);
    const state = await waitForStatus(ctx.t, loaded.body.uploadId, ['completed', 'failed'], 120_000);
    expect(state).toMatchObject({ status: 'completed', rows_processed: 24_000, rows_failed: 0 });

    const { rows } = await ctx.t.pool.query(
      `SELECT count(*)::int AS n, sum(quantity)::int AS qty, sum(unit_price)::text AS price, count(shipped_on)::int AS shipped,
              count(*) FILTER (WHERE paid)::int AS paid, count(*) FILTER (WHERE notes LIKE '%' || chr(10) || '%')::int AS multiline,
              min(ordered_at) AS first
         FROM ${table('shop_orders')}`,
    );
    const expected = { qty: 0, price: 0, shipped: 0, multiline: 0 };
    for (let i = 0; i < 24_000; i++) {
      expected.qty += 1 + (i % 9);
      expected.price += ((i % 500) + 0.25) * 100;
      if (i % 3 !== 0) expected.shipped++;
      if (i % 7 !== 0 && i % 11 === 0) expected.multiline++;
    }
    expect(rows[0]).toMatchObject({ n: 24_000, qty: expected.qty, price: (expected.price / 100).toFixed(2), shipped: expected.shipped, paid: 12_000, multiline: expected.multiline });
    expect((rows[0].first as Date).toISOString()).toBe('2025-03-01T09:00:00.000Z');
  });

  it('answers 410 once the upload\'s file is gone (deleted after its load)', async () => {
    const { rows } = await ctx.t.pool.query(`SELECT id FROM uploads WHERE dataset = 'shop_orders' AND object_deleted_at IS NOT NULL`);
    expect(rows).toHaveLength(1);
    const res = await sendJson(url(), key, 'POST', '/datasets/infer', { uploadId: rows[0].id });
    expect(res.status).toBe(410);
    expect(res.body.error.code).toBe('object_gone');
  });
});

describe('bodies', () => {
  it('reads every fixture encoding over HTTP, octet-stream and gzip alike', async () => {
    const win = await readFile(path.join(FIXTURES_DIR, 'kunden-win1252.csv'));
    const utf16 = await readFile(path.join(FIXTURES_DIR, 'events-tab-utf16le.csv'));
    const a = await inferBody(win, { contentType: 'application/octet-stream' });
    expect(a.status).toBe(200);
    expect(a.body.definition.format).toEqual({ delimiter: ';', encoding: 'windows-1252', dateFormat: 'DD.MM.YYYY', decimalSeparator: ',', quotes: 'strict' });
    expect(a.body.columns.map((c: { samples: string[] }) => c.samples[0])).toContain('Müller GmbH');
    const b = await inferBody(gzipSync(utf16));
    expect(b.status).toBe(200);
    expect(b.body.dialect).toMatchObject({ encoding: 'utf-16', delimiter: '\t' });
    const c = await inferBody('a|b\n1|x\n', { contentType: 'text/plain; charset=utf-8' });
    expect(c.status).toBe(200);
    expect(c.body.definition).toEqual({ name: 'dataset', columns: [{ name: 'a', type: 'integer', required: true }, { name: 'b', type: 'text', required: true }], format: expect.objectContaining({ delimiter: '|' }) });
  });

  it.each([
    ['an empty body', '', 'text/csv', 400, 'sample_empty'],
    ['blank lines only', '\n\n', 'text/csv', 400, 'sample_empty'],
    ['a PNG', Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0]), 'application/octet-stream', 415, 'unsupported_media_type'],
    ['broken gzip', Buffer.from([0x1f, 0x8b, 0x08, 0x00, 1, 2, 3, 4, 5, 6, 7, 8, 9]), 'text/csv', 415, 'unsupported_media_type'],
    ['data without a header', '1,2.5,2025-01-01\n2,3.5,2025-01-02\n', 'text/csv', 400, 'sample_no_header'],
    ['HTML', '<html></html>', 'text/html', 415, 'unsupported_content_type'],
    ['multipart', multipartBody('a,b\n1,2\n', { boundary: 'b0' }).body, 'multipart/form-data; boundary=b0', 415, 'unsupported_content_type'],
    ['JSON without uploadId', '{"id":"x"}', 'application/json', 400, 'validation_failed'],
    ['JSON that is not JSON', '{"uploadId":', 'application/json', 400, 'malformed_json'],
  ])('refuses %s', async (_what, body, contentType, status, code) => {
    const res = await inferBody(body, { contentType });
    expect(res.status).toBe(status);
    expect(res.body.error.code).toBe(code);
  });

  it('refuses a name that is built in, and a body over 16 MiB (declared) with 413', async () => {
    const named = await inferBody('a,b\n1,2\n', { name: 'webhook_events' });
    expect(named.status).toBe(400);
    expect(named.body.error.code).toBe('invalid_dataset');
    const big = await inferBody('a,b\n1,2\n', { headers: { 'content-length': String(17 * 1024 * 1024) } });
    expect(big.status).toBe(413);
    expect(big.body.error.code).toBe('body_too_large');
  });

  it('needs an API key', async () => {
    const res = await request(url(), null, 'POST', '/datasets/infer');
    expect(res.status).toBe(401);
  });
});
