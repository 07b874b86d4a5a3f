// Dry run (dryRun=true, AIP-163 validate_only) end to end over real HTTP, s3rver, Postgres and the worker:
// the same counts, rejects and errors.csv as a real load of the same file, nothing loaded into
// webhook_events or a tenant's dataset in any mode, what PostgreSQL alone refuses refused alike, the
// outbox payload saying dryRun: true, and the option carried by every way of uploading.
import { FormatRegistry } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WorkerHandle } from '../../src/ingest/worker.ts';
import { EVENT_TYPES } from '../../src/notify/event-types.ts';
import { breakRows } from '../helpers/bad-rows.ts';
import { directClient, putParts } from '../helpers/direct.ts';
import { useApi } from '../helpers/env.ts';
import { generateCsv } from '../helpers/generate.ts';
import { request, sendJson, upload } from '../helpers/http.ts';
import { tusCreate, tusPatch } from '../helpers/tus.ts';
import { countRows, startTestWorker, waitForStatus } from '../helpers/worker.ts';

FormatRegistry.Set('uuid', (v) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(v));
FormatRegistry.Set('date-time', (v) => !Number.isNaN(Date.parse(v)));

const ctx = useApi();
let key: string;
let tenantId: string;
let worker: WorkerHandle;

beforeAll(async () => {
  ({ key, tenantId } = await ctx.t.newTenantKey());
  worker = await startTestWorker(ctx.t);
});
afterAll(async () => {
  await worker?.stop();
});

const url = () => ctx.api.url;
const table = (name: string) => `"t_${tenantId.replaceAll('-', '')}".${name}`;
const schemaOf = (type: string) => EVENT_TYPES.find((e) => e.name === type)!.schema;

async function load(csv: string | Buffer, fields: Record<string, string> = {}) {
  const res = await upload(url(), key, { file: { content: csv }, fields });
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  const id = res.body.uploadId as string;
  const state = await waitForStatus(ctx.t, id, ['completed', 'failed']);
  return { id, state, ...(await outcome(id)) };
}

/** What a client sees of a finished upload: its status body, its errors.csv and its outcome event's payload. */
async function outcome(id: string) {
  const status = (await request(url(), key, 'GET', `/uploads/${id}`)).body;
  const errorsCsv = (await request(url(), key, 'GET', `/uploads/${id}/errors.csv`)).text;
  const { rows } = await ctx.t.pool.query(
    `SELECT payload FROM outbox_events WHERE upload_id = $1 AND event_type IN ('upload.completed', 'upload.failed')`,
    [id],
  );
  expect(rows).toHaveLength(1);
  return { status, errorsCsv, payload: rows[0].payload as Record<string, unknown> };
}

/** The comparable part of an upload's status: counts and outcome, not ids or times. */
const figures = (s: Record<string, unknown>) => ({
  status: s.status, mode: s.mode, rowsProcessed: s.rowsProcessed, rowsFailed: s.rowsFailed,
  rowsInserted: s.rowsInserted, rowsUpdated: s.rowsUpdated, error: s.error, unknownColumns: s.unknownColumns,
});

async function snapshot(name: string) {
  const { rows } = await ctx.t.pool.query(`SELECT * FROM ${table(name)} ORDER BY upload_id, line_number`);
  return rows;
}

describe('dry run of webhook_events', () => {
  it('counts, rejects and errors.csv equal a real load of the same file; nothing is loaded; the payload says dryRun: true', async () => {
    const file = breakRows(generateCsv(400).toString(), 20);
    const dry = await load(file.csv, { dryRun: 'true' });
    const real = await load(file.csv);
    expect(dry.state.status).toBe('completed');
    expect(real.status.rowsFailed).toBeGreaterThan(10);
    expect(figures(dry.status)).toEqual(figures(real.status));
    expect(dry.errorsCsv).toBe(real.errorsCsv);
    expect([dry.status.dryRun, real.status.dryRun]).toEqual([true, false]);
    expect(await countRows(ctx.t, dry.id)).toEqual({ total: 0, distinct: 0 });
    expect((await countRows(ctx.t, real.id)).total).toBe(real.status.rowsProcessed);

    expect(dry.payload).toMatchObject({ type: 'upload.completed', dryRun: true, rowsProcessed: real.status.rowsProcessed, rowsFailed: real.status.rowsFailed });
    expect(real.payload).not.toHaveProperty('dryRun');
    for (const p of [dry.payload, real.payload]) expect(Value.Check(schemaOf('upload.completed'), p), JSON.stringify(p)).toBe(true);
  });

  it('a dry run that fails fails as the load would (error budget), with dryRun: true in upload.failed', async () => {
    const file = breakRows(generateCsv(100).toString(), 10);
    const dry = await load(file.csv, { dryRun: 'true', maxErrors: '2' });
    const real = await load(file.csv, { maxErrors: '2' });
    expect(dry.state).toMatchObject({ status: 'failed', error_code: 'error_budget_exceeded' });
    expect(figures(dry.status)).toEqual(figures(real.status));
    expect(dry.payload).toMatchObject({ type: 'upload.failed', dryRun: true, errorCode: 'error_budget_exceeded' });
    expect(Value.Check(schemaOf('upload.failed'), dry.payload)).toBe(true);
  });

  it('dryRun is refused unless true or false, before anything is stored', async () => {
    const res = await upload(url(), key, { file: { content: generateCsv(2) }, fields: { dryRun: 'yes' } });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'validation_failed', message: 'dryRun must be true or false' });
    const query = await upload(url(), key, { file: { content: generateCsv(2) }, query: 'dryRun=true' });
    expect(query.status).toBe(202);
    expect((await waitForStatus(ctx.t, query.body.uploadId, ['completed', 'failed'])).status).toBe('completed');
    expect((await request(url(), key, 'GET', `/uploads/${query.body.uploadId}`)).body).toMatchObject({ dryRun: true, rowsProcessed: 2 });
    expect(await countRows(ctx.t, query.body.uploadId)).toEqual({ total: 0, distinct: 0 });
  });
});

describe('dry run of a tenant dataset', () => {
  const products = {
    name: 'products',
    columns: [
      { name: 'sku', type: 'text', required: true },
      { name: 'name', type: 'text', maxLength: 20 },
      { name: 'price', type: 'numeric(8,2)' },
      { name: 'kind', type: 'enum', values: ['fruit', 'veg'] },
      { name: 'sold_on', type: 'date' },
    ],
    key: ['sku'],
  };
  const first = 'sku,name,price,kind,sold_on\nA,apple,1.00,fruit,2024-01-02\nB,banana,2.00,fruit,2024-01-03\nC,carrot,3.00,veg,2024-01-04\n';
  // updates B and C, adds D and E; F repeats D (duplicate_key); bad price, kind and a name too long
  const second =
    'sku,name,price,kind\nB,banana,2.50,fruit\nD,date,4.00,fruit\nC,carrots,3.10,veg\nX,bad,1e99,fruit\nY,bad kind,1.00,mineral\n' +
    'D,date again,4.10,fruit\nZ,a name much too long for it,1.00,veg\nE,endive,5.00,veg\n';

  it.each(['upsert', 'replace'] as const)('%s: the dry run changes nothing, and reports what the load of the same file then does', async (mode) => {
    if (mode === 'upsert') {
      expect((await sendJson(url(), key, 'POST', '/datasets', products)).status).toBe(201);
    }
    await ctx.t.pool.query(`DELETE FROM ${table('products')}`);
    expect((await load(first, { dataset: 'products' })).status).toMatchObject({ status: 'completed', rowsProcessed: 3 });
    const before = await snapshot('products');

    const dry = await load(second, { dataset: 'products', mode, dryRun: 'true' });
    expect(await snapshot('products')).toEqual(before);
    const real = await load(second, { dataset: 'products', mode });
    expect(figures(dry.status)).toEqual(figures(real.status));
    expect(dry.errorsCsv).toBe(real.errorsCsv);
    expect(dry.status).toMatchObject({ dryRun: true, status: 'completed', rowsProcessed: 4, rowsFailed: 4 });
    expect(real.status).toMatchObject(mode === 'upsert' ? { rowsInserted: 2, rowsUpdated: 2 } : { rowsInserted: 4, rowsUpdated: 0 });
    expect(dry.errorsCsv).toContain('duplicate_key');
    expect(await snapshot('products')).not.toEqual(before);
    expect(dry.payload).toMatchObject({ type: 'upload.completed', dryRun: true });
    expect(Value.Check(schemaOf('upload.completed'), dry.payload)).toBe(true);
  });

  it('append: nothing loaded; a key that the table already holds fails the dry run as it fails the load', async () => {
    await ctx.t.pool.query(`DELETE FROM ${table('products')}`);
    expect((await load(first, { dataset: 'products' })).state.status).toBe('completed');
    const before = await snapshot('products');
    const fresh = 'sku,name,price\nG,grape,1.00\nH,"ho,neydew",2.00\nI,kiwi,x\n';
    const dry = await load(fresh, { dataset: 'products', dryRun: 'true' });
    expect(await snapshot('products')).toEqual(before);
    const real = await load(fresh, { dataset: 'products' });
    expect(figures(dry.status)).toEqual(figures(real.status));
    expect(dry.errorsCsv).toBe(real.errorsCsv);
    expect(dry.status).toMatchObject({ rowsProcessed: 2, rowsFailed: 1, rowsInserted: 2 });

    const clash = 'sku,name\nJ,jackfruit\nA,apple again\n';
    const dryClash = await load(clash, { dataset: 'products', dryRun: 'true' });
    const realClash = await load(clash, { dataset: 'products' });
    expect(dryClash.state).toMatchObject({ status: 'failed', error_code: 'database_rejected_data' });
    expect(realClash.state).toMatchObject({ status: 'failed', error_code: 'database_rejected_data' });
    expect(dryClash.state.error).toContain('(sku)=(A) already exists');
    const repeated = await load('sku,name\nK,kale\nK,kale again\n', { dataset: 'products', dryRun: 'true' });
    expect(repeated.state).toMatchObject({ status: 'failed', error_code: 'database_rejected_data' });
    expect(repeated.state.error).toContain('(sku)=(K) is repeated in the file');
  });

  it('what only PostgreSQL refuses is refused by the dry run too (a CHECK the validators do not know)', async () => {
    // A constraint added to the table by hand: only the database knows it.
    await ctx.t.pool.query(`ALTER TABLE ${table('products')} ADD CONSTRAINT price_positive CHECK (price > 0)`);
    try {
      const csv = 'sku,name,price\nM,melon,1.00\nN,nectarine,-1.00\n';
      const dry = await load(csv, { dataset: 'products', mode: 'upsert', dryRun: 'true' });
      const real = await load(csv, { dataset: 'products', mode: 'upsert' });
      expect(dry.state).toMatchObject({ status: 'failed', error_code: 'database_rejected_data' });
      expect(real.state).toMatchObject({ status: 'failed', error_code: 'database_rejected_data' });
      expect(dry.state.error).toContain('price_positive');
    } finally {
      await ctx.t.pool.query(`ALTER TABLE ${table('products')} DROP CONSTRAINT price_positive`);
    }
  });
  it('a keyed table without the key\'s unique index fails the upsert and replace dry runs as it fails their loads', async () => {
    expect((await sendJson(url(), key, 'POST', '/datasets', { name: 'legacy', columns: [{ name: 'code', type: 'text' }] })).status).toBe(201);
    expect((await load('code\nx\nx\n', { dataset: 'legacy' })).state.status).toBe('completed');
    // as migration 016 leaves such a dataset: the key in the definition, no unique index (the rows repeat it)
    await ctx.t.pool.query(`UPDATE datasets SET definition = definition || '{"key": ["code"]}' WHERE tenant_id = $1 AND name = 'legacy'`, [tenantId]);
    for (const mode of ['upsert', 'replace']) {
      const dry = await load('code\ny\n', { dataset: 'legacy', mode, dryRun: 'true' });
      const real = await load('code\ny\n', { dataset: 'legacy', mode });
      expect([dry.state.error_code, real.state.error_code], mode).toEqual(['dataset_key_not_unique', 'dataset_key_not_unique']);
    }
    expect((await ctx.t.pool.query(`SELECT code FROM ${table('legacy')}`)).rows).toEqual([{ code: 'x' }, { code: 'x' }]);
  });
});

describe('dryRun travels with every way of uploading', () => {
  it('tus Upload-Metadata and a direct upload record it and load nothing', async () => {
    const file = generateCsv(30);
    const { path } = await tusCreate(url(), key, file.length, { dryRun: 'true' });
    const done = await tusPatch(url(), key, path, 0, file);
    expect(done.status).toBe(204);
    const tusId = String(done.headers['upload-id']);

    const direct = directClient(ctx, () => key);
    const started = await direct.startOk(file, { dryRun: true });
    expect((await direct.complete(started.uploadId, await putParts(started, file))).status).toBe(202);

    for (const id of [tusId, started.uploadId]) {
      expect(await waitForStatus(ctx.t, id, ['completed', 'failed'])).toMatchObject({ status: 'completed', rows_processed: 30 });
      expect((await request(url(), key, 'GET', `/uploads/${id}`)).body).toMatchObject({ dryRun: true, rowsProcessed: 30 });
      expect(await countRows(ctx.t, id)).toEqual({ total: 0, distinct: 0 });
    }
  });
});
