// Datasets defined as data, end to end: definitions over real HTTP (validation, additive changes,
// refusals, versions, tenant scope), then an upload into the tenant's own table through the real worker.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WorkerHandle } from '../../src/ingest/worker.ts';
import { useApi } from '../helpers/env.ts';
import { request, sendJson, upload } from '../helpers/http.ts';
import { countRows, startTestWorker, waitForStatus } from '../helpers/worker.ts';

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
const post = (body: unknown, k = key) => sendJson(url(), k, 'POST', '/datasets', body);
const put = (name: string, body: unknown, k = key) => sendJson(url(), k, 'PUT', `/datasets/${name}`, body);
const schema = () => `t_${tenantId.replaceAll('-', '')}`;

const orders = {
  name: 'orders',
  columns: [
    { name: 'order_id', type: 'uuid', required: true, aliases: ['Order ID'] },
    { name: 'qty', type: 'integer', required: true },
    { name: 'amount', type: 'numeric(8,2)' },
    { name: 'paid', type: 'boolean', default: 'false' },
    { name: 'status', type: 'enum', values: ['open', 'shipped'] },
    { name: 'email', type: 'text', maxLength: 20, pattern: '^[^@\\s]+@[^@\\s]+$' },
    { name: 'ordered_on', type: 'date' },
    { name: 'meta', type: 'jsonb' },
  ],
  key: ['order_id'],
};

describe('definitions', () => {
  it('refuses U+0000 anywhere in a JSON body with 400 naming the field (PostgreSQL text cannot hold it)', async () => {
    const col = (extra: Record<string, unknown>) => ({ name: 'nul_case', columns: [{ name: 'a', type: 'text', ...extra }] });
    const cases: [unknown, string][] = [
      [col({ default: 'x\u0000y' }), 'body.columns[0].default'],
      [col({ aliases: ['x\u0000'] }), 'body.columns[0].aliases[0]'],
      [col({ pattern: '\u0000' }), 'body.columns[0].pattern'],
      [{ name: 'nul_case', columns: [{ name: 'a', type: 'enum', values: ['x\u0000'] }] }, 'body.columns[0].values[0]'],
    ];
    for (const [body, field] of cases) {
      for (const res of [await post(body), await put('nul_case', body)]) {
        expect(res.status, res.text).toBe(400);
        expect(res.body.error).toMatchObject({ code: 'validation_failed' });
        expect(res.body.error.message).toContain(field);
      }
    }
    const endpoint = await sendJson(url(), key, 'POST', '/endpoints', { url: 'https://example.com/h', description: 'a\u0000b' });
    expect(endpoint.status, endpoint.text).toBe(400);
    expect(endpoint.body.error.message).toContain('body.description');
    expect((await request(url(), key, 'GET', '/datasets/nul_case')).status).toBe(404);
  });

  it('creates a dataset and its table in the tenant schema; GET, list and versions show it', async () => {
    const res = await post(orders);
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ name: 'orders', version: 1, builtIn: false, changed: true, key: ['order_id'], table: `"${schema()}"."orders"` });
    const { rows } = await ctx.t.pool.query(
      `SELECT column_name, data_type, is_nullable FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'orders' ORDER BY ordinal_position`,
      [schema()],
    );
    expect(rows.map((r) => [r.column_name, r.data_type, r.is_nullable])).toEqual([
      ['upload_id', 'uuid', 'NO'], ['line_number', 'bigint', 'NO'], ['order_id', 'uuid', 'NO'], ['qty', 'integer', 'NO'],
      ['amount', 'numeric', 'YES'], ['paid', 'boolean', 'YES'], ['status', 'text', 'YES'], ['email', 'character varying', 'YES'],
      ['ordered_on', 'date', 'YES'], ['meta', 'jsonb', 'YES'],
    ]);
    const unique = await ctx.t.pool.query(
      `SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conrelid = $1::regclass AND contype = 'u'`,
      [`"${schema()}".orders`],
    );
    expect(unique.rows.map((r) => r.def).sort()).toEqual(['UNIQUE (order_id)']);

    expect((await request(url(), key, 'GET', '/datasets/orders')).body).toMatchObject({ name: 'orders', version: 1 });
    const list = await request(url(), key, 'GET', '/datasets');
    expect(list.body.items.map((d: { name: string }) => d.name)).toEqual(['webhook_events', 'orders']);
    expect((await post(orders)).body.error.code).toBe('dataset_exists');
  });

  it.each([
    ['a quote', 'or"ders', 'may hold only'],
    ['a semicolon', 'x; DROP TABLE uploads', 'may hold only'],
    ['64 characters', 'a'.repeat(64), 'at most 63'],
    ['a reserved word', 'select', 'reserved word'],
    ['upper case', 'Orders', 'may hold only'],
    ['the built-in name', 'webhook_events', 'built in'],
  ])('refuses a dataset name with %s: 400 with the reason', async (_what, name, reason) => {
    const res = await post({ ...orders, name });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('invalid_dataset');
    expect(res.body.error.message).toContain(reason);
  });

  it.each([
    ['an unsafe column name', [{ name: 'a"; DROP TABLE tenants; --', type: 'text' }], 'may hold only'],
    ['a reserved column name', [{ name: 'user', type: 'text' }], 'reserved word'],
    ['a system column', [{ name: 'line_number', type: 'text' }], 'kept by the service'],
    ['an unknown type', [{ name: 'a', type: 'varchar; DROP TABLE x' }], 'unknown type'],
    ['a bad numeric', [{ name: 'a', type: 'numeric(2,5)' }], 'scale'],
    ['a repeated column', [{ name: 'a', type: 'text' }, { name: 'a', type: 'text' }], 'already names'],
    ['an alias clash', [{ name: 'a', type: 'text' }, { name: 'b', type: 'text', aliases: ['A'] }], 'already names'],
    ['maxLength on an integer', [{ name: 'a', type: 'integer', maxLength: 3 }], 'text columns only'],
    ['an enum without values', [{ name: 'a', type: 'enum' }], 'needs values'],
    ['a bad pattern', [{ name: 'a', type: 'text', pattern: '(' }], 'not a valid regular expression'],
    ['a backreference (RE2 has none: it would need backtracking)', [{ name: 'a', type: 'text', pattern: '^(a)\\1$' }], 'not a valid regular expression'],
    ['a lookahead (RE2 has none)', [{ name: 'a', type: 'text', pattern: '^(?=a)' }], 'not a valid regular expression'],
    ['a default of the wrong type', [{ name: 'a', type: 'integer', default: 'ten' }], 'not valid for the column'],
  ])('refuses %s: 400 with the reason, nothing created', async (_what, columns, reason) => {
    const res = await post({ name: 'bad_one', columns });
    expect(res.status).toBe(400);
    expect(res.body.error.message).toContain(reason);
    const { rows } = await ctx.t.pool.query(`SELECT to_regclass($1) AS t`, [`"${schema()}".bad_one`]);
    expect(rows[0].t).toBeNull();
  });

  it('applies additive changes with ALTER TABLE, refuses destructive ones with 409, and versions each change', async () => {
    const wider = {
      ...orders,
      columns: [
        ...orders.columns.map((c) =>
          c.name === 'qty' ? { ...c, required: false } : c.name === 'status' ? { ...c, values: ['open', 'shipped', 'returned'] } : c.name === 'email' ? { ...c, maxLength: 40 } : c,
        ),
        { name: 'note', type: 'text' },
      ],
    };
    const res = await put('orders', wider);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ version: 2, changed: true });
    // the same definition again changes nothing
    const again = await put('orders', wider);
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ version: 2, changed: false });

    const refused: [string, unknown][] = [
      ['dropped', { ...wider, columns: wider.columns.filter((c) => c.name !== 'note') }],
      ['retyped', { ...wider, columns: wider.columns.map((c) => (c.name === 'qty' ? { ...c, type: 'bigint' } : c)) }],
      ['become required', { ...wider, columns: wider.columns.map((c) => (c.name === 'note' ? { ...c, required: true } : c)) }],
      ['shorter maxLength', { ...wider, columns: wider.columns.map((c) => (c.name === 'email' ? { ...c, maxLength: 10 } : c)) }],
      ['lose enum value', { ...wider, columns: wider.columns.map((c) => (c.name === 'status' ? { ...c, values: ['open'] } : c)) }],
      ['cannot be required', { ...wider, columns: [...wider.columns, { name: 'extra', type: 'text', required: true }] }],
      ['key cannot change', { ...wider, key: ['qty'] }],
    ];
    for (const [reason, body] of refused) {
      const r = await put('orders', body);
      expect(r.status, reason).toBe(409);
      expect(r.body.error.code).toBe('dataset_change_refused');
      expect(r.body.error.message).toContain(reason);
    }
    const versions = await request(url(), key, 'GET', '/datasets/orders/versions');
    expect(versions.body.items.map((v: { version: number }) => v.version)).toEqual([1, 2]);
    expect(versions.body.items[1].appliedSql.join('\n')).toMatch(/ALTER TABLE .*DROP NOT NULL.*TYPE varchar\(40\).*ADD COLUMN "note" text/s);
    const { rows } = await ctx.t.pool.query(
      `SELECT is_nullable, (SELECT character_maximum_length FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'orders' AND column_name = 'email') AS email_len
         FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'orders' AND column_name = 'qty'`,
      [schema()],
    );
    expect(rows[0]).toEqual({ is_nullable: 'YES', email_len: 40 });
  });

  it("keeps datasets per tenant: another tenant's name is a 404, and it may use the same name for its own", async () => {
    expect((await request(url(), otherKey, 'GET', '/datasets/orders')).status).toBe(404);
    expect((await request(url(), otherKey, 'GET', '/datasets/orders/versions')).status).toBe(404);
    expect((await request(url(), otherKey, 'DELETE', '/datasets/orders')).status).toBe(404);
    expect((await put('orders', { ...orders, columns: orders.columns.slice(0, 2) }, otherKey)).body).toMatchObject({ version: 1 });
    const list = await request(url(), otherKey, 'GET', '/datasets');
    expect(list.body.items.find((d: { name: string }) => d.name === 'orders').columns).toHaveLength(2);
    expect((await request(url(), key, 'GET', '/datasets/orders')).body.columns).toHaveLength(9);
    // an upload naming a dataset the tenant does not have is refused before anything is stored
    const res = await upload(url(), otherKey, { file: { content: 'a\n1\n' }, fields: { dataset: 'invoices' } });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('unknown_dataset');
  });
});

describe('loading into a tenant dataset (append)', () => {
  const id1 = '0b7f2c4e-1111-4a2b-a333-123456789abc';
  const id2 = '0b7f2c4e-2222-4a2b-a333-123456789abc';
  const id3 = '0b7f2c4e-3333-4a2b-a333-123456789abc';
  const id4 = '0b7f2c4e-4444-4a2b-a333-123456789abc';
  // header by alias and in another case, a column order of its own, an unknown column
  const csv = [
    'QTY,order id,Amount,paid,status,email,ordered_on,meta,ignored',
    `2,${id1},12.50,true,open,a@b.io,2025-02-28,"{""k"": 1}",x`, // 2 valid
    `3,${id2},,,shipped,,,,x`, // 3 valid: paid takes its default
    `,${id3},1,true,open,,,,x`, // 4 valid since qty is no longer required
    `1,not-a-uuid,1,true,open,,,,x`, // 5 invalid_uuid
    `1,${id1},999999.995,true,open,,,,x`, // 6 out_of_range: numeric(8,2) rounds it to 1000000.00
    `1,${id1},1,maybe,open,,,,x`, // 7 invalid_boolean
    `1,${id1},1,true,closed,,,,x`, // 8 invalid_enum
    `1,${id1},1,true,open,not-an-email,,,x`, // 9 pattern
    `1,${id1},1,true,open,${'a'.repeat(36)}@b.io,,,x`, // 10 too_long: 41 characters, maxLength 40 since version 2
    `1,${id1},1,true,open,,2025-02-30,,x`, // 11 invalid_date
    `1,${id1},1,true,open,,,{bad,x`, // 12 invalid_json
    ``, // 13 blank
    `99999999999,${id1},1,true,open,,,,x`, // 14 out_of_range (integer)
    `1,${id4},1,true,returned,a@b.io,2024-02-29,[],x`, // 15 valid (enum value added in version 2)
  ].join('\n') + '\n';

  it('loads exactly the valid rows into the tenant table; rejects carry their codes; DELETE waits for the upload', async () => {
    const res = await upload(url(), key, { file: { content: csv }, fields: { dataset: 'orders' } });
    expect(res.status).toBe(202);
    const uploadId = res.body.uploadId as string;
    // not yet processed (no worker is running): the dataset cannot be deleted
    const refused = await request(url(), key, 'DELETE', '/datasets/orders');
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('dataset_in_use');

    worker = await startTestWorker(ctx.t);
    const state = await waitForStatus(ctx.t, uploadId, ['completed', 'failed']);
    expect(state).toMatchObject({ status: 'completed', rows_processed: 4, rows_failed: 9, error_code: null });
    const { rows: meta } = await ctx.t.pool.query('SELECT dataset_version, unknown_columns FROM uploads WHERE id = $1', [uploadId]);
    expect(meta[0]).toEqual({ dataset_version: 2, unknown_columns: ['ignored'] });

    const { rows } = await ctx.t.pool.query(
      `SELECT line_number::int, order_id, qty, amount::text, paid, status, email, ordered_on::text, meta FROM "${schema()}".orders WHERE upload_id = $1 ORDER BY line_number`,
      [uploadId],
    );
    expect(rows).toEqual([
      { line_number: 2, order_id: id1, qty: 2, amount: '12.50', paid: true, status: 'open', email: 'a@b.io', ordered_on: '2025-02-28', meta: { k: 1 } },
      { line_number: 3, order_id: id2, qty: 3, amount: null, paid: false, status: 'shipped', email: null, ordered_on: null, meta: null },
      { line_number: 4, order_id: id3, qty: null, amount: '1.00', paid: true, status: 'open', email: null, ordered_on: null, meta: null },
      { line_number: 15, order_id: id4, qty: 1, amount: '1.00', paid: true, status: 'returned', email: 'a@b.io', ordered_on: '2024-02-29', meta: [] },
    ]);
    const { rows: errors } = await ctx.t.pool.query('SELECT line::int, column_name, code FROM upload_errors WHERE upload_id = $1 ORDER BY line', [uploadId]);
    expect(errors.map((e) => [e.line, e.column_name, e.code])).toEqual([
      [5, 'order_id', 'invalid_uuid'], [6, 'amount', 'out_of_range'], [7, 'paid', 'invalid_boolean'], [8, 'status', 'invalid_enum'],
      [9, 'email', 'pattern'], [10, 'email', 'too_long'], [11, 'ordered_on', 'invalid_date'], [12, 'meta', 'invalid_json'],
      [14, 'qty', 'out_of_range'],
    ]);
    // line accounting: the file's 15 lines are the header, one blank line, 4 loaded and 9 rejected
    expect(1 + 1 + state.rows_processed + state.rows_failed).toBe(csv.split('\n').length - 1);
    const errorsCsv = await request(url(), key, 'GET', `/uploads/${uploadId}/errors.csv`);
    expect(errorsCsv.status).toBe(200);
    expect(errorsCsv.text.split('\n')[0]).toContain('QTY,order id');

    const deleted = await request(url(), key, 'DELETE', '/datasets/orders');
    expect(deleted.status).toBe(204);
    const { rows: gone } = await ctx.t.pool.query(`SELECT to_regclass($1) AS t`, [`"${schema()}".orders`]);
    expect(gone[0].t).toBeNull();
  });

  it('fails the file with missing_columns when a required column is absent; webhook_events loads as before', async () => {
    expect((await post({ name: 'readings', columns: [{ name: 'meter', type: 'text', required: true }, { name: 'kwh', type: 'numeric' }] })).status).toBe(201);
    const bad = await upload(url(), key, { file: { content: 'kwh\n1.5\n' }, fields: { dataset: 'readings' } });
    const state = await waitForStatus(ctx.t, bad.body.uploadId, ['completed', 'failed']);
    expect(state).toMatchObject({ status: 'failed', error_code: 'missing_columns' });

    const builtIn = await upload(url(), key, {
      file: { content: 'event_id,event_type,occurred_at\n0b7f2c4e-1111-4a2b-a333-123456789abc,invoice.paid,2025-01-01T00:00:00Z\n' },
    });
    const done = await waitForStatus(ctx.t, builtIn.body.uploadId, ['completed', 'failed']);
    expect(done).toMatchObject({ status: 'completed', rows_processed: 1 });
    expect(await countRows(ctx.t, builtIn.body.uploadId)).toEqual({ total: 1, distinct: 1 });
  });
});
