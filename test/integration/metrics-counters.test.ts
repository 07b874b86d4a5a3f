// The database gauges of /metrics come from counters that triggers keep (migrations/007_metrics.sql):
// a scrape never reads the uploads or deliveries tables, and the counters equal what those tables
// hold — after every kind of change, under concurrent transactions that commit or roll back, and
// while rows of finished connections are being folded.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMetricsServer, type MetricsServer } from '../../src/metrics/server.ts';
import { createTestEnv, type TestEnv } from '../helpers/env.ts';
import { databaseGauges, sample, scrape, TRUTH_SQL } from '../helpers/metrics.ts';

let t: TestEnv;
let ops: MetricsServer;
let opsUrl: string;
let tenantId: string;

beforeAll(async () => {
  t = await createTestEnv();
  ops = await startMetricsServer({ host: '127.0.0.1', port: 0, pool: t.pool, store: t.store, logger: t.logger });
  opsUrl = `http://127.0.0.1:${ops.port}`;
  ({ tenantId } = await t.newTenantKey());
});
afterAll(async () => {
  await ops?.close();
  await t?.close();
});

async function truth(): Promise<Record<string, number>> {
  const { rows } = await t.pool.query<{ key: string; n: number }>(TRUTH_SQL);
  return Object.fromEntries(rows.map((r) => [r.key, r.n]));
}

/** The counters summed over every backend's rows, keyed like the truth. */
async function counted(): Promise<Record<string, number>> {
  const { rows } = await t.pool.query<{ key: string; n: number }>(
    `SELECT metric || ':' || label AS key, sum(value)::bigint AS n FROM metric_counters GROUP BY metric, label`,
  );
  return Object.fromEntries(rows.map((r) => [r.key, r.n]));
}

/** The tables' own aggregates = the counters = what a scrape reports. */
async function expectGaugesExact(): Promise<Record<string, number>> {
  const expected = await truth();
  const counters = await counted();
  expect(Object.fromEntries(Object.keys(expected).map((k) => [k, counters[k] ?? 0]))).toEqual(expected);
  expect(databaseGauges(await scrape(opsUrl))).toEqual(expected);
  return expected;
}

const STATUSES = ['uploaded', 'processing', 'completed', 'failed'];
const DELIVERY_STATUSES = ['pending', 'sent', 'failed', 'skipped'];

/** Inserts `n` uploads in one statement; returns their ids. */
async function insertUploads(db: pg.ClientBase | pg.Pool, tenant: string, n: number, status = 'uploaded'): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>(
    `INSERT INTO uploads (id, tenant_id, dataset, filename, size_bytes, sha256, object_key, status, rows_processed, rows_failed)
     SELECT gen_random_uuid(), $1, 'webhook_events', 'f.csv', 10, repeat('0', 64), 'uploads/x/' || gen_random_uuid(), $3, i * 10, i % 3
       FROM generate_series(1, $2::int) i RETURNING id`,
    [tenant, n, status],
  );
  return rows.map((r) => r.id);
}

async function insertDelivery(db: pg.ClientBase | pg.Pool, tenant: string, uploadId: string, status = 'pending'): Promise<string> {
  const { rows } = await db.query<{ id: string }>(
    `WITH e AS (
       INSERT INTO outbox_events (tenant_id, event_type, upload_id, upload_attempt, payload, expanded_at)
       VALUES ($1, 'upload.completed', $2, 1, '{}', now()) RETURNING id)
     INSERT INTO deliveries (event_id, target_key, tenant_id, upload_id, upload_attempt, event, channel, payload, delivery_status)
     SELECT e.id, 'callback', $1, $2, 1, 'upload.completed', 'none', '{}', $3 FROM e RETURNING id`,
    [tenant, uploadId, status],
  );
  return rows[0]!.id;
}

/** A small deterministic generator (mulberry32), so a failing mix can be replayed. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

describe('metric counters', () => {
  it('equal the tables after every kind of change (insert, status and count updates, delete, cascade, truncate)', async () => {
    const other = await t.newTenantKey();
    const ids = await insertUploads(t.pool, tenantId, 40);
    await insertUploads(t.pool, other.tenantId, 25, 'completed');
    await expectGaugesExact();

    // Status changes one by one and in bulk; counts of finished uploads changed; progress writes.
    await t.pool.query(`UPDATE uploads SET status = 'processing' WHERE id = ANY($1)`, [ids.slice(0, 30)]);
    await t.pool.query(`UPDATE uploads SET rows_processed = rows_processed + 5 WHERE status = 'processing'`);
    await t.pool.query(`UPDATE uploads SET status = 'completed', rows_processed = 1000, rows_failed = 7 WHERE id = ANY($1)`, [ids.slice(0, 20)]);
    await t.pool.query(`UPDATE uploads SET status = 'failed', rows_processed = 0, rows_failed = 3 WHERE id = ANY($1)`, [ids.slice(20, 25)]);
    await t.pool.query(`UPDATE uploads SET rows_failed = rows_failed + 1 WHERE id = $1`, [ids[0]]);
    await t.pool.query(`UPDATE uploads SET status = 'uploaded', rows_processed = 0, rows_failed = 0 WHERE id = $1`, [ids[21]]); // a retry
    const deliveries = await Promise.all(ids.slice(0, 25).map((id, i) => insertDelivery(t.pool, tenantId, id, DELIVERY_STATUSES[i % 4])));
    await t.pool.query(`UPDATE deliveries SET delivery_status = 'sent' WHERE id = ANY($1) AND delivery_status = 'pending'`, [deliveries]);
    await t.pool.query(`UPDATE deliveries SET attempts = attempts + 1 WHERE id = ANY($1)`, [deliveries]); // nothing counted changes
    const middle = await expectGaugesExact();
    expect(middle['uploads:completed']).toBe(45);
    expect(middle['rows_loaded:']).toBeGreaterThan(20_000);

    // Deletes: a retention-style batch (deliveries keep their row, upload_id set NULL), a single
    // delivery, then a whole tenant by cascade.
    await t.pool.query(`DELETE FROM uploads WHERE id = ANY($1)`, [ids.slice(0, 10)]);
    await t.pool.query(`DELETE FROM deliveries WHERE id = $1`, [deliveries[12]]);
    await expectGaugesExact();
    await t.pool.query(`DELETE FROM tenants WHERE id = $1`, [other.tenantId]);
    await expectGaugesExact();

    // A rolled-back change counts for nothing.
    const client = await t.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(`UPDATE uploads SET status = 'failed'`);
      await insertUploads(client, tenantId, 5);
      await client.query('ROLLBACK');
    } finally {
      client.release();
    }
    await expectGaugesExact();

    // TRUNCATE (tests and operators do it) starts the counts again from zero.
    await t.pool.query('TRUNCATE deliveries CASCADE');
    expect((await expectGaugesExact())['deliveries:sent']).toBe(0);
  });

  it('stay exact under concurrent transactions that commit or roll back, while rows are folded', async () => {
    const seedUploads = await insertUploads(t.pool, tenantId, 60);
    const CLIENTS = 8;
    const TRANSACTIONS = 100;
    const rolledBack = { n: 0 };

    // Each transaction changes at most one existing row (so the mix itself cannot deadlock), plus
    // rows it inserts; one in five rolls back.
    const client = async (c: number) => {
      const rnd = random(c + 1);
      const pick = <T,>(list: readonly T[]) => list[Math.floor(rnd() * list.length)]!;
      const db = new pg.Client({ connectionString: t.databaseUrl, application_name: 'stream-api:test-mix' });
      await db.connect();
      try {
        for (let i = 0; i < TRANSACTIONS; i++) {
          await db.query('BEGIN');
          const roll = rnd();
          if (roll < 0.3) {
            const [id] = await insertUploads(db, tenantId, 1 + Math.floor(rnd() * 3), pick(STATUSES));
            if (rnd() < 0.5) await insertDelivery(db, tenantId, id!, pick(DELIVERY_STATUSES));
          } else if (roll < 0.65) {
            await db.query(`UPDATE uploads SET status = $2, rows_processed = $3, rows_failed = $4 WHERE id = $1`, [
              pick(seedUploads), pick(STATUSES), Math.floor(rnd() * 1000), Math.floor(rnd() * 10),
            ]);
          } else if (roll < 0.8) {
            await db.query(
              `UPDATE deliveries SET delivery_status = $1 WHERE id = (SELECT id FROM deliveries ORDER BY random() LIMIT 1)`,
              [pick(DELIVERY_STATUSES)],
            );
          } else if (roll < 0.9) {
            await db.query(`DELETE FROM uploads WHERE id = (SELECT id FROM uploads WHERE NOT (id = ANY($1)) ORDER BY random() LIMIT 1)`, [seedUploads]);
          } else {
            await db.query(`DELETE FROM deliveries WHERE id = (SELECT id FROM deliveries ORDER BY random() LIMIT 1)`);
          }
          if (rnd() < 0.2) {
            await db.query('ROLLBACK');
            rolledBack.n++;
          } else {
            await db.query('COMMIT');
          }
        }
      } finally {
        await db.end(); // its backend goes: its counter rows are left for the fold
      }
    };

    let mixing = true;
    const folds = (async () => {
      let folded = 0;
      while (mixing) {
        folded += (await t.pool.query<{ n: number }>('SELECT fold_metric_counters() AS n')).rows[0]!.n;
        await scrape(opsUrl);
        await new Promise((r) => setTimeout(r, 10));
      }
      return folded;
    })();
    try {
      await Promise.all(Array.from({ length: CLIENTS }, (_, c) => client(c)));
    } finally {
      mixing = false;
    }
    const foldedDuring = await folds;
    expect(rolledBack.n).toBeGreaterThan(0);
    console.log(`concurrent mix: ${CLIENTS} connections × ${TRANSACTIONS} transactions (${rolledBack.n} rolled back); ${foldedDuring} counter rows folded meanwhile`);
    await expectGaugesExact();

    // The rows of the finished connections fold into backend 0; the sums do not move.
    await t.pool.query('SELECT fold_metric_counters()');
    const { rows } = await t.pool.query<{ backend_pid: number }>(
      `SELECT DISTINCT backend_pid FROM metric_counters WHERE backend_pid <> 0 AND backend_pid NOT IN (SELECT pid FROM pg_stat_activity)`,
    );
    expect(rows).toEqual([]);
    await expectGaugesExact();
  }, 60_000);

  it('counting never makes one transaction wait for another', async () => {
    // Both change the same counted values (uploads:uploaded, deliveries:pending). With one shared
    // counter row per value, the second would wait for the first to commit.
    const [first, second] = [await t.pool.connect(), await t.pool.connect()];
    try {
      await first.query('BEGIN');
      const [held] = await insertUploads(first, tenantId, 1);
      await insertDelivery(first, tenantId, held!);
      await second.query('BEGIN');
      await second.query(`SET LOCAL lock_timeout = '2s'`);
      const [id] = await insertUploads(second, tenantId, 1);
      await insertDelivery(second, tenantId, id!);
      await second.query('COMMIT');
      await first.query('COMMIT');
    } finally {
      first.release();
      second.release();
    }
    await expectGaugesExact();
  });

  it('a scrape that finds many counter rows folds them in the background, sums unchanged', async () => {
    // Fault injection: rows as 300 connections that are gone would leave them (pids no backend has).
    await t.pool.query(
      `INSERT INTO metric_counters (metric, label, backend_pid, value)
       SELECT 'uploads', 'completed', -i, 1 FROM generate_series(1, 150) i
       UNION ALL SELECT 'uploads', 'completed', -i, -1 FROM generate_series(151, 300) i`,
    );
    const before = await expectGaugesExact();
    const goneRows = async () => (await t.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM metric_counters WHERE backend_pid < 0')).rows[0]!.n;
    const until = Date.now() + 10_000;
    while ((await goneRows()) > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    expect(await goneRows()).toBe(0);
    expect(await expectGaugesExact()).toEqual(before);
  });

  it('a scrape reads neither uploads nor deliveries: it answers while both are locked', async () => {
    const expected = await truth();
    const locker = await t.pool.connect();
    try {
      await locker.query('BEGIN');
      // What a long ALTER TABLE or VACUUM FULL would hold; any read of the tables waits for it.
      await locker.query('LOCK TABLE uploads, deliveries IN ACCESS EXCLUSIVE MODE');
      const text = await scrape(opsUrl);
      expect(sample(text, 'stream_api_metrics_database_up')).toBe(1);
      expect(databaseGauges(text)).toEqual(expected);
    } finally {
      await locker.query('ROLLBACK');
      locker.release();
    }
  });
});
