// Loading modes of a tenant's dataset (issue 10), end to end over real HTTP, s3rver, Postgres and the
// worker: upsert (insert, update, in-file duplicate keys), replace (atomic for readers; a failed one
// leaves the old rows), the refusals at upload time, a key added to a table whose rows repeat it, and
// exactly-once when a load is interrupted or its job runs again.
import type { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CopySink } from '../../src/ingest/copy-sink.ts';
import type { WorkerHandle } from '../../src/ingest/worker.ts';
import { useApi } from '../helpers/env.ts';
import { request, sendJson, upload } from '../helpers/http.ts';
import { sinkGate } from '../helpers/sinks.ts';
import { tusMetadata, tusRequest } from '../helpers/tus.ts';
import { waitFor } from '../helpers/wait.ts';
import { startTestWorker, waitForStatus } from '../helpers/worker.ts';

const ctx = useApi();
let key: string;
let tenantId: string;
let worker: WorkerHandle;
/** the next load's COPY goes through this, when set (one worker for the file) */
let hook: ((sink: CopySink) => Writable) | null = null;

beforeAll(async () => {
  ({ key, tenantId } = await ctx.t.newTenantKey());
  worker = await startTestWorker(ctx.t, { wrapSink: (sink) => (hook ? hook(sink) : sink) });
});
afterAll(async () => {
  await worker?.stop();
});

const url = () => ctx.api.url;
const table = (name: string) => `"t_${tenantId.replaceAll('-', '')}".${name}`;
const define = (body: unknown) => sendJson(url(), key, 'POST', '/datasets', body);

async function load(dataset: string, csv: string, fields: Record<string, string> = {}) {
  const res = await upload(url(), key, { file: { content: csv }, fields: { dataset, ...fields } });
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  const id = res.body.uploadId as string;
  const state = await waitForStatus(ctx.t, id, ['completed', 'failed']);
  const status = (await request(url(), key, 'GET', `/uploads/${id}`)).body;
  return { id, state, status };
}

async function rowsOf(name: string, columns: string) {
  const { rows } = await ctx.t.pool.query(`SELECT ${columns} FROM ${table(name)} ORDER BY 1`);
  return rows;
}

const products = {
  name: 'products',
  columns: [
    { name: 'sku', type: 'text', required: true },
    { name: 'name', type: 'text' },
    { name: 'price', type: 'numeric(8,2)' },
    { name: 'note', type: 'text' },
  ],
  key: ['sku'],
};

describe('upsert', () => {
  it('a key makes a unique index; a first file inserts, a second updates some rows and adds others', async () => {
    expect((await define(products)).status).toBe(201);
    const { rows: unique } = await ctx.t.pool.query(
      `SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conrelid = $1::regclass AND contype = 'u' ORDER BY 1`,
      [table('products')],
    );
    expect(unique.map((r) => r.def)).toEqual(['UNIQUE (sku)']);

    const first = await load('products', 'sku,name,price,note\nA,apple,1.00,n1\nB,banana,2.00,n2\nC,cherry,3.00,n3\nD,date,4.00,n4\n', { mode: 'upsert' });
    expect(first.state).toMatchObject({ status: 'completed', rows_processed: 4, rows_failed: 0 });
    expect(first.status).toMatchObject({ mode: 'upsert', rowsProcessed: 4, rowsFailed: 0, rowsInserted: 4, rowsUpdated: 0 });

    // no `note` column: an update sets the file's columns and keeps the others
    const second = await load('products', 'price,sku,name\n2.50,B,banana\n3.00,C,cherry\n4.75,D,dates\n5.00,E,elder\n6.00,F,fig\n', { mode: 'upsert' });
    expect(second.status).toMatchObject({ status: 'completed', rowsProcessed: 5, rowsFailed: 0, rowsInserted: 2, rowsUpdated: 3 });
    const rows = await rowsOf('products', 'sku, name, price::text, note, upload_id, line_number::int');
    expect(rows).toEqual([
      { sku: 'A', name: 'apple', price: '1.00', note: 'n1', upload_id: first.id, line_number: 2 },
      // the last writer: upload_id and line_number are the second file's
      { sku: 'B', name: 'banana', price: '2.50', note: 'n2', upload_id: second.id, line_number: 2 },
      { sku: 'C', name: 'cherry', price: '3.00', note: 'n3', upload_id: second.id, line_number: 3 },
      { sku: 'D', name: 'dates', price: '4.75', note: 'n4', upload_id: second.id, line_number: 4 },
      { sku: 'E', name: 'elder', price: '5.00', note: null, upload_id: second.id, line_number: 5 },
      { sku: 'F', name: 'fig', price: '6.00', note: null, upload_id: second.id, line_number: 6 },
    ]);
  });

  it('rejects the later of two lines with the same key as duplicate_key, naming both lines; the rest load', async () => {
    const csv = 'sku,name,price\nG,grape,1.00\nH,honeydew,2.00\nG,grape again,9.00\n\nI,kiwi,x\nJ,jackfruit,3.00\nG,third,9.50\nH,"ho\nneydew",2.00\n';
    const { id, state, status } = await load('products', csv, { mode: 'upsert' });
    expect(status).toMatchObject({ status: 'completed', rowsProcessed: 3, rowsFailed: 4, rowsInserted: 3, rowsUpdated: 0 });
    // line accounting: header + loaded + rejected (+ the blank line 5, + the record's second line 10) = lines
    expect(1 + state.rows_processed + state.rows_failed + 1 + 1).toBe(csv.split('\n').length - 1);
    const { rows: errors } = await ctx.t.pool.query('SELECT line::int, column_name, code, message, raw FROM upload_errors WHERE upload_id = $1 ORDER BY line', [id]);
    expect(errors.map((e) => [e.line, e.code])).toEqual([[4, 'duplicate_key'], [6, 'invalid_numeric'], [8, 'duplicate_key'], [9, 'duplicate_key']]);
    expect(errors[0]).toMatchObject({ column_name: 'sku', raw: '"G","grape again","9.00"' });
    expect(errors[0].message).toContain('(G) repeats line 2; line 4 is rejected');
    expect(errors[2].message).toContain('(G) repeats line 2; line 8 is rejected');
    expect(errors[3].message).toContain('(H) repeats line 3; line 9 is rejected');
    const loaded = await ctx.t.pool.query(`SELECT sku, name, line_number::int FROM ${table('products')} WHERE upload_id = $1 ORDER BY sku`, [id]);
    expect(loaded.rows).toEqual([
      { sku: 'G', name: 'grape', line_number: 2 },
      { sku: 'H', name: 'honeydew', line_number: 3 },
      { sku: 'J', name: 'jackfruit', line_number: 7 },
    ]);
    const errorsCsv = await request(url(), key, 'GET', `/uploads/${id}/errors.csv`);
    expect(errorsCsv.text).toContain('"G","grape again","9.00",4,duplicate_key: key (sku) = (G) repeats line 2');
  });

  it('a load cut mid-COPY is retried from scratch, and a job run again after the commit changes nothing', async () => {
    const gate = sinkGate();
    hook = gate.wrap;
    const res = await upload(url(), key, { file: { content: 'sku,name\nA,avocado\nK,kale\n' }, fields: { dataset: 'products', mode: 'upsert' } });
    await gate.reached;
    hook = null;
    gate.fail(new Error('connection lost mid-COPY (simulated)'));
    const id = res.body.uploadId as string;
    const state = await waitForStatus(ctx.t, id, ['completed', 'failed']);
    expect(state).toMatchObject({ status: 'completed', attempt: 2, rows_processed: 2 });
    const before = await rowsOf('products', 'sku, name, upload_id, line_number::int');
    expect(before.filter((r) => r.upload_id === id)).toEqual([
      { sku: 'A', name: 'avocado', upload_id: id, line_number: 2 },
      { sku: 'K', name: 'kale', upload_id: id, line_number: 3 },
    ]);
    expect((await request(url(), key, 'GET', `/uploads/${id}`)).body).toMatchObject({ rowsInserted: 1, rowsUpdated: 1 });

    await ctx.t.pool.query(`SELECT graphile_worker.add_job('process-upload', json_build_object('uploadId', $1::text), job_key => 'upload:' || $1)`, [id]);
    await waitFor(async () => (await ctx.t.pool.query(`SELECT 1 FROM graphile_worker.jobs WHERE key = $1`, [`upload:${id}`])).rowCount === 0, 30_000, 'the re-run job to end');
    expect(await rowsOf('products', 'sku, name, upload_id, line_number::int')).toEqual(before);
    expect(await waitForStatus(ctx.t, id, ['completed'])).toMatchObject({ attempt: 2, rows_processed: 2 });
  });
});

describe('replace', () => {
  const readings = { name: 'readings', columns: [{ name: 'meter', type: 'text', required: true }, { name: 'kwh', type: 'numeric' }] };

  it('swaps the rows in one transaction: a reader mid-load sees the old rows, then only the new ones', async () => {
    expect((await define(readings)).status).toBe(201);
    const old = await load('readings', 'meter,kwh\nm1,1\nm2,2\nm3,3\n');
    expect(old.status).toMatchObject({ mode: 'append', rowsProcessed: 3, rowsInserted: 3, rowsUpdated: 0 });

    const gate = sinkGate();
    hook = gate.wrap;
    const res = await upload(url(), key, { file: { content: 'meter,kwh\nm9,9\nm8,8\n' }, fields: { dataset: 'readings', mode: 'replace' } });
    await gate.reached; // the DELETE has run in the load transaction, the COPY is under way
    hook = null;
    const reader = await ctx.t.pool.query(`SELECT meter FROM ${table('readings')} ORDER BY meter`);
    expect(reader.rows.map((r) => r.meter)).toEqual(['m1', 'm2', 'm3']);
    gate.open();
    const id = res.body.uploadId as string;
    expect(await waitForStatus(ctx.t, id, ['completed', 'failed'])).toMatchObject({ status: 'completed', rows_processed: 2 });
    expect((await request(url(), key, 'GET', `/uploads/${id}`)).body).toMatchObject({ mode: 'replace', rowsInserted: 2, rowsUpdated: 0 });
    expect(await rowsOf('readings', 'meter, kwh::int, upload_id')).toEqual([
      { meter: 'm8', kwh: 8, upload_id: id },
      { meter: 'm9', kwh: 9, upload_id: id },
    ]);
  });

  it.each([
    ['an unterminated quote', 'meter,kwh\nm5,5\n"m6,6\n', {}, 'unterminated_quote'],
    ['the error budget exceeded', 'meter,kwh\nm5,5\nm6,x\n', { maxErrors: '0' }, 'error_budget_exceeded'],
  ])('a replace that fails on %s leaves the old rows', async (_what, csv, fields, code) => {
    const before = await rowsOf('readings', 'meter, kwh::int, upload_id');
    expect(before).toHaveLength(2);
    const { state } = await load('readings', csv, { mode: 'replace', ...fields });
    expect(state).toMatchObject({ status: 'failed', error_code: code });
    expect(await rowsOf('readings', 'meter, kwh::int, upload_id')).toEqual(before);
  });

  it('replaces a keyed dataset, a key repeated in the file being a duplicate_key reject', async () => {
    const { id, status } = await load('products', 'sku,name\nZ,zucchini\nY,yam\nZ,zest\n', { mode: 'replace' });
    expect(status).toMatchObject({ status: 'completed', rowsProcessed: 2, rowsFailed: 1, rowsInserted: 2, rowsUpdated: 0 });
    expect(await rowsOf('products', 'sku, name, upload_id')).toEqual([
      { sku: 'Y', name: 'yam', upload_id: id },
      { sku: 'Z', name: 'zucchini', upload_id: id },
    ]);
  });
});

describe('refusals', () => {
  it('refuses at upload time, before anything is stored: upsert without a key, a mode on webhook_events, an unknown mode', async () => {
    const count = async () => Number((await ctx.t.pool.query('SELECT count(*) FROM uploads WHERE tenant_id = $1', [tenantId])).rows[0].count);
    const objects = async () => (await ctx.t.listObjects('uploads/')).length;
    const [uploadsBefore, objectsBefore] = [await count(), await objects()];
    const cases: [Record<string, string>, string, string | undefined, string][] = [
      [{ dataset: 'readings', mode: 'upsert' }, 'dataset_has_no_key', undefined, 'has no key'],
      [{ mode: 'upsert' }, 'mode_not_supported', undefined, 'append only'],
      [{ dataset: 'webhook_events', mode: 'replace' }, 'mode_not_supported', undefined, 'append only'],
      [{ dataset: 'readings', mode: 'merge' }, 'invalid_mode', undefined, 'not one of append, upsert, replace'],
      [{}, 'dataset_has_no_key', 'dataset=readings&mode=upsert', 'has no key'],
    ];
    for (const [fields, code, query, message] of cases) {
      const res = await upload(url(), key, { file: { content: 'meter,kwh\nm1,1\n' }, fields, ...(query ? { query } : {}) });
      expect(res.status, code).toBe(400);
      expect(res.body.error.code).toBe(code);
      expect(res.body.error.message).toContain(message);
    }
    const direct = await sendJson(url(), key, 'POST', '/uploads/direct', { filename: 'r.csv', size: 100, dataset: 'readings', mode: 'upsert' });
    expect(direct.status).toBe(400);
    expect(direct.body.error.code).toBe('dataset_has_no_key');
    for (const [meta, code] of [[{ dataset: 'readings', mode: 'upsert' }, 'dataset_has_no_key'], [{ mode: 'replace' }, 'mode_not_supported']] as const) {
      const tus = await tusRequest(url(), key, 'POST', '/files', { headers: { 'Upload-Length': '10', 'Upload-Metadata': tusMetadata(meta) } });
      expect([tus.status, tus.error?.code]).toEqual([400, code]);
    }
    expect([await count(), await objects()]).toEqual([uploadsBefore, objectsBefore]);
  });

  it('adding a key to a dataset whose rows repeat it is refused with 409 and the reason; without repeats it is added', async () => {
    expect((await define({ name: 'visits', columns: [{ name: 'visitor', type: 'text' }, { name: 'page', type: 'text' }] })).status).toBe(201);
    await load('visits', 'visitor,page\nv1,/a\nv2,/b\nv1,/c\n');
    const put = (body: unknown) => sendJson(url(), key, 'PUT', '/datasets/visits', body);
    const columns = [{ name: 'visitor', type: 'text' }, { name: 'page', type: 'text' }];
    const refused = await put({ name: 'visits', columns, key: ['visitor'] });
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('dataset_change_refused');
    expect(refused.body.error.message).toMatch(/rows already loaded repeat it.*\(visitor\)=\(v1\)/);
    expect((await request(url(), key, 'GET', '/datasets/visits')).body).toMatchObject({ version: 1 });

    const added = await put({ name: 'visits', columns, key: ['visitor', 'page'] });
    expect(added.status).toBe(200);
    expect(added.body).toMatchObject({ version: 2, key: ['visitor', 'page'] });
    const changed = await put({ name: 'visits', columns, key: ['page'] });
    expect(changed.status).toBe(409);
    expect(changed.body.error.message).toContain('key cannot change');
    const { status } = await load('visits', 'visitor,page\nv1,/a\nv3,/d\n', { mode: 'upsert' });
    expect(status).toMatchObject({ status: 'completed', rowsInserted: 1, rowsUpdated: 1 });
  });

  it('an upsert into a table without the key\'s index (a key stored before migration 016, rows repeating it) fails with dataset_key_not_unique', async () => {
    expect((await define({ name: 'legacy', columns: [{ name: 'code', type: 'text' }] })).status).toBe(201);
    await load('legacy', 'code\nx\nx\n');
    // as migration 016 leaves such a dataset: the key in the definition, no unique index (the rows repeat it)
    await ctx.t.pool.query(`UPDATE datasets SET definition = definition || '{"key": ["code"]}' WHERE tenant_id = $1 AND name = 'legacy'`, [tenantId]);
    const { state } = await load('legacy', 'code\ny\n', { mode: 'upsert' });
    expect(state).toMatchObject({ status: 'failed', error_code: 'dataset_key_not_unique' });
    expect(await rowsOf('legacy', 'code')).toEqual([{ code: 'x' }, { code: 'x' }]);
  });
});
