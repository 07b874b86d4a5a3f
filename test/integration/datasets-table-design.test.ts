// The physical design of a tenant's dataset table (issue 10): a BRIN index on upload_id instead of the
// unique (upload_id, line_number) btree. Real Postgres, HTTP, s3rver and worker: a new table has the
// index and no such constraint; migration 020 converts a table made the old way; exactly-once holds
// without the constraint (a load cut mid-COPY is retried from scratch, a job run again after the commit
// adds nothing); and a per-upload query on a table of many loads reads through the index, a small
// part of the table.
import { randomBytes, randomUUID } from 'node:crypto';
import { copyFile, mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Writable } from 'node:stream';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { BY_UPLOAD_PLAN } from '../../src/datasets/ddl.ts';
import { migrate, migrationsDir } from '../../src/db/migrate.ts';
import { createDb, createPool } from '../../src/db/pool.ts';
import type { CopySink } from '../../src/ingest/copy-sink.ts';
import type { WorkerHandle } from '../../src/ingest/worker.ts';
import { ensureTenant } from '../../src/tenants/tenants.repository.ts';
import { useApi } from '../helpers/env.ts';
import { adminQuery, withDatabase } from '../helpers/global-setup.ts';
import { sendJson, upload } from '../helpers/http.ts';
import { sinkGate } from '../helpers/sinks.ts';
import { waitFor } from '../helpers/wait.ts';
import { startTestWorker, waitForStatus } from '../helpers/worker.ts';

const ctx = useApi();
let key: string;
let tenantId: string;
let worker: WorkerHandle;
/** the next load's COPY goes through this, when set */
let hook: ((sink: CopySink) => Writable) | null = null;

beforeAll(async () => {
  ({ key, tenantId } = await ctx.t.newTenantKey());
  worker = await startTestWorker(ctx.t, { wrapSink: (sink) => (hook ? hook(sink) : sink) });
});
afterAll(async () => {
  await worker?.stop();
});

const table = (name: string) => `"t_${tenantId.replaceAll('-', '')}".${name}`;

/** The table's unique constraints and its indexes, as PostgreSQL prints them. */
async function shape(db: pg.Pool, qualified: string) {
  const { rows: unique } = await db.query<{ def: string }>(
    `SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conrelid = $1::regclass AND contype = 'u' ORDER BY 1`,
    [qualified],
  );
  const { rows: indexes } = await db.query<{ def: string }>(
    `SELECT regexp_replace(pg_get_indexdef(indexrelid), '^.* USING ', 'USING ') AS def FROM pg_index WHERE indrelid = $1::regclass`,
    [qualified],
  );
  return { unique: unique.map((r) => r.def), indexes: indexes.map((r) => r.def).sort() };
}

const BRIN = 'USING brin (upload_id uuid_bloom_ops) WITH (pages_per_range=\'32\', autosummarize=\'on\')';

async function load(dataset: string, csv: string) {
  const res = await upload(ctx.api.url, key, { file: { content: csv }, fields: { dataset } });
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return res.body.uploadId as string;
}

describe('a new dataset table', () => {
  it('has the BRIN index on upload_id, no unique (upload_id, line_number), and the key\'s unique index', async () => {
    const res = await sendJson(ctx.api.url, key, 'POST', '/datasets', {
      name: 'keyed',
      columns: [{ name: 'sku', type: 'text', required: true }, { name: 'qty', type: 'integer' }],
      key: ['sku'],
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(await shape(ctx.t.pool, table('keyed'))).toEqual({
      unique: ['UNIQUE (sku)'],
      indexes: [BRIN, 'USING btree (sku)'],
    });
  });
});

describe('exactly-once without a unique (upload_id, line_number)', () => {
  const lines = Array.from({ length: 500 }, (_, i) => `m${i % 7},${i}`).join('\n');
  const csv = `meter,kwh\n${lines}\n`;

  beforeAll(async () => {
    const res = await sendJson(ctx.api.url, key, 'POST', '/datasets', { name: 'readings', columns: [{ name: 'meter', type: 'text' }, { name: 'kwh', type: 'integer' }] });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
  });

  const counts = async (id: string) =>
    (await ctx.t.pool.query<{ total: number; distinct: number }>(
      `SELECT count(*)::int AS total, count(DISTINCT line_number)::int AS distinct FROM ${table('readings')} WHERE upload_id = $1`,
      [id],
    )).rows[0]!;

  it('a load cut mid-COPY is retried from scratch: every line once', async () => {
    const gate = sinkGate();
    hook = gate.wrap;
    const id = await load('readings', csv);
    await gate.reached;
    hook = null;
    gate.fail(new Error('connection lost mid-COPY (simulated)'));
    expect(await waitForStatus(ctx.t, id, ['completed', 'failed'])).toMatchObject({ status: 'completed', attempt: 2, rows_processed: 500 });
    expect(await counts(id)).toEqual({ total: 500, distinct: 500 });
  });

  it('a job run again after the commit adds nothing', async () => {
    const id = await load('readings', csv);
    expect(await waitForStatus(ctx.t, id, ['completed', 'failed'])).toMatchObject({ status: 'completed', attempt: 1, rows_processed: 500 });
    const { rows: before } = await ctx.t.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table('readings')}`);
    await ctx.t.pool.query(`SELECT graphile_worker.add_job('process-upload', json_build_object('uploadId', $1::text), job_key => 'upload:' || $1)`, [id]);
    await waitFor(async () => (await ctx.t.pool.query('SELECT 1 FROM graphile_worker.jobs WHERE key = $1', [`upload:${id}`])).rowCount === 0, 30_000, 'the re-run job to end');
    expect(await counts(id)).toEqual({ total: 500, distinct: 500 });
    const { rows: after } = await ctx.t.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table('readings')}`);
    expect(after[0]!.n).toBe(before[0]!.n);
    expect(await waitForStatus(ctx.t, id, ['completed'])).toMatchObject({ attempt: 1 });
  });
});

describe('a per-upload query on a table of many loads', () => {
  it('reads through the BRIN index: the upload\'s rows exactly, a small part of the table\'s pages', async () => {
    const res = await sendJson(ctx.api.url, key, 'POST', '/datasets', {
      name: 'events',
      columns: [{ name: 'kind', type: 'text' }, { name: 'amount', type: 'numeric(12,2)' }, { name: 'note', type: 'text' }],
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    // 40 loads of 10,000 rows, each appended in one statement as a COPY appends them (~30 MB).
    const uploads = Array.from({ length: 40 }, () => randomUUID());
    for (const id of uploads) {
      await ctx.t.pool.query(
        `INSERT INTO ${table('events')} (upload_id, line_number, kind, amount, note)
         SELECT $1, n + 1, 'kind ' || (n % 13), n / 100.0, repeat('x', 40) FROM generate_series(1, 10000) n`,
        [id],
      );
    }
    await ctx.t.pool.query(`VACUUM ANALYZE ${table('events')}`); // what autovacuum does after a load: ranges summarised
    const { rows: pages } = await ctx.t.pool.query<{ n: number }>('SELECT relpages::int AS n FROM pg_class WHERE oid = $1::regclass', [table('events')]);
    const target = uploads[17]!;
    const client = await ctx.t.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(BY_UPLOAD_PLAN);
      // One process: a parallel bitmap heap scan's counts show the leader's share only.
      await client.query('SET LOCAL max_parallel_workers_per_gather = 0');
      const { rows } = await client.query<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(
        `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) SELECT count(*) FROM ${table('events')} WHERE upload_id = $1`,
        [target],
      );
      const nodes = flatten(rows[0]!['QUERY PLAN'][0].Plan);
      const indexScan = nodes.find((n) => n['Node Type'] === 'Bitmap Index Scan');
      expect(indexScan?.['Index Name']).toMatch(/^events_upload_id_idx/);
      expect(nodes.some((n) => n['Node Type'] === 'Seq Scan')).toBe(false);
      const heap = nodes.find((n) => n['Node Type'] === 'Bitmap Heap Scan')!;
      expect(heap['Actual Rows']).toBe(10_000);
      // Pages read: the load's own (1/40 of the table) and the few ranges the bloom filters cannot rule out.
      expect(heap['Lossy Heap Blocks']).toBeLessThan(pages[0]!.n / 10);
      const deleted = await client.query(`DELETE FROM ${table('events')} WHERE upload_id = $1`, [target]);
      expect(deleted.rowCount).toBe(10_000);
      await client.query('ROLLBACK');
    } finally {
      client.release();
    }
    const { rows: all } = await ctx.t.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table('events')} WHERE upload_id = $1`, [target]);
    expect(all[0]!.n).toBe(10_000);
  });
});

interface PlanNode {
  'Node Type': string;
  'Index Name'?: string;
  'Actual Rows'?: number;
  'Lossy Heap Blocks'?: number;
  Plans?: PlanNode[];
}

function flatten(node: PlanNode): PlanNode[] {
  return [node, ...(node.Plans ?? []).flatMap(flatten)];
}

describe('migration 020', () => {
  const MIGRATION = '020_dataset_upload_index.sql';
  let database: string;
  let pool: pg.Pool;
  let before: string;

  beforeAll(async () => {
    database = `stream_api_upgrade_${randomBytes(4).toString('hex')}`;
    await adminQuery(inject('adminUrl'), `CREATE DATABASE ${database}`);
    pool = createPool(withDatabase(inject('adminUrl'), database), 'stream-api:test-upgrade', 2);
    before = await mkdtemp(path.join(os.tmpdir(), 'stream-api-before-020-'));
    for (const name of await readdir(migrationsDir)) {
      if (/^\d{3}_.*\.sql$/.test(name) && name < MIGRATION) await copyFile(path.join(migrationsDir, name), path.join(before, name));
    }
  });
  afterAll(async () => {
    await pool?.end();
    await adminQuery(inject('adminUrl'), `DROP DATABASE IF EXISTS ${database} WITH (FORCE)`).catch(() => {});
    if (before) await rm(before, { recursive: true, force: true });
  });

  it('moves a table made the old way to the BRIN index, keeps its rows and key; a table that is gone is skipped', async () => {
    expect(await migrate(pool, () => {}, before)).not.toContain(MIGRATION);
    const tenant = await ensureTenant(createDb(pool), 'upgrading'); // the pool is ended in afterAll
    const schema = `t_${tenant.id.replaceAll('-', '')}`;
    // The old createTableSql's DDL, a name long enough that PostgreSQL shortened the constraint's name.
    const long = `orders_${'x'.repeat(50)}`;
    await pool.query(`CREATE SCHEMA "${schema}"`);
    await pool.query(`CREATE TABLE "${schema}"."${long}" (
      upload_id uuid NOT NULL DEFAULT current_setting('app.upload_id')::uuid, line_number bigint NOT NULL,
      order_id uuid NOT NULL, qty integer, UNIQUE (upload_id, line_number), UNIQUE (order_id))`);
    await pool.query(`INSERT INTO "${schema}"."${long}" SELECT gen_random_uuid(), n, gen_random_uuid(), n FROM generate_series(1, 100) n`);
    const definition = { name: long, columns: [{ name: 'order_id', type: 'uuid', required: true }, { name: 'qty', type: 'integer' }], key: ['order_id'] };
    await pool.query(
      `INSERT INTO datasets (tenant_id, name, version, definition) VALUES ($1, $2, 1, $3), ($1, 'dropped_by_hand', 1, $4)`,
      [tenant.id, long, definition, { ...definition, name: 'dropped_by_hand' }],
    );
    const qualified = `"${schema}"."${long}"`;
    expect((await shape(pool, qualified)).unique).toEqual(['UNIQUE (order_id)', 'UNIQUE (upload_id, line_number)']);

    expect(await migrate(pool)).toContain(MIGRATION);
    const after = await shape(pool, qualified);
    expect(after.unique).toEqual(['UNIQUE (order_id)']);
    expect(after.indexes).toEqual([BRIN, 'USING btree (order_id)']);
    const { rows } = await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${qualified}`);
    expect(rows[0]!.n).toBe(100);
  });
});
