// What one /metrics scrape costs the database at a realistic size, before and after the gauges moved
// to trigger-kept counters (migrations/007_metrics.sql); and what the counting costs a status change.
// One run, one fresh database: N uploads (most finished) and one delivery per finished upload are
// inserted with generate_series, plus a backlog of queued jobs; then
//   (a) the previous version's scrape — whole-table aggregates of uploads and deliveries — and
//   (b) today's scrape (createDatabaseRegistry, the real code path)
// are each timed over many scrapes and explained (EXPLAIN (ANALYZE, BUFFERS): pages and rows read).
// Last, single-row status updates are timed with the counting triggers on and off.
//
// Usage: npx tsx bench/metrics-scrape.ts [--uploads 1000000] [--jobs 5000] [--scrapes 50] [--updates 3000]
//   DATABASE_URL  server to use (default postgres://postgres@127.0.0.1:5432/postgres); a database
//                 bench_<random> is created there, migrated, and dropped at the end (also on error)
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import type pg from 'pg';
import { migrate } from '../src/db/migrate.ts';
import { createPool } from '../src/db/pool.ts';
import { createDatabaseRegistry, SNAPSHOT_SQL } from '../src/metrics/database.ts';
import { adminExec, DEFAULT_ADMIN_URL, dropBenchDatabase, randomDatabaseName, withDatabase } from './lib/db.ts';
import { fixed, int, table } from './lib/format.ts';

const { values } = parseArgs({
  options: {
    uploads: { type: 'string', default: '1000000' },
    jobs: { type: 'string', default: '5000' },
    scrapes: { type: 'string', default: '50' },
    updates: { type: 'string', default: '3000' },
  },
});
const UPLOADS = positiveInt(values.uploads, '--uploads');
const JOBS = positiveInt(values.jobs, '--jobs');
const SCRAPES = positiveInt(values.scrapes, '--scrapes');
const UPDATES = positiveInt(values.updates, '--updates');

function positiveInt(raw: string | undefined, name: string): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer`);
  return n;
}

/** The scrape before migration 007: every gauge aggregated from the tables (queue part as today). */
const BEFORE_SQL = `
  SELECT 'upload' AS kind, status AS key, count(*)::bigint AS n,
         coalesce(sum(rows_processed) FILTER (WHERE status = 'completed'), 0)::bigint AS loaded,
         coalesce(sum(rows_failed) FILTER (WHERE status IN ('completed', 'failed')), 0)::bigint AS rejected
    FROM uploads GROUP BY status
  UNION ALL
  SELECT 'delivery', delivery_status, count(*), 0, 0 FROM deliveries GROUP BY delivery_status
  UNION ALL
  SELECT 'queue', task_identifier, count(*), 0, 0 FROM graphile_worker.jobs
   WHERE locked_at IS NULL AND run_at <= now() AND attempts < max_attempts GROUP BY task_identifier`;

const TRUTH_SQL = `
  SELECT 'uploads' AS metric, status AS label, count(*)::bigint AS n FROM uploads GROUP BY status
  UNION ALL SELECT 'deliveries', delivery_status, count(*) FROM deliveries GROUP BY delivery_status
  UNION ALL SELECT 'rows_loaded', '', coalesce(sum(rows_processed), 0)::bigint FROM uploads WHERE status = 'completed'
  UNION ALL SELECT 'rows_rejected', '', coalesce(sum(rows_failed), 0)::bigint FROM uploads WHERE status IN ('completed', 'failed')`;

async function fill(pool: pg.Pool): Promise<void> {
  await pool.query(`INSERT INTO tenants (name, webhook_secret) SELECT 'bench-' || i, 'whsec_bench' FROM generate_series(1, 50) i`);
  // 95 % completed, 4 % failed, 0.5 % uploaded, 0.5 % processing.
  await pool.query(
    `INSERT INTO uploads (id, tenant_id, dataset, filename, size_bytes, sha256, object_key, status, rows_processed, rows_failed,
                          created_at, updated_at)
     SELECT gen_random_uuid(), t.ids[1 + i % 50], 'webhook_events', 'f.csv', 1000000, repeat('0', 64), 'uploads/bench/' || i,
            CASE WHEN i % 200 = 0 THEN 'uploaded' WHEN i % 200 = 1 THEN 'processing' WHEN i % 25 = 2 THEN 'failed' ELSE 'completed' END,
            CASE WHEN i % 25 = 2 THEN 0 ELSE 1000 + i % 5000 END, i % 7,
            now() - make_interval(secs => i), now() - make_interval(secs => i)
       FROM generate_series(1, $1::int) i, (SELECT array_agg(id) AS ids FROM tenants) t`,
    [UPLOADS],
  );
  // One event per finished upload, expanded into one delivery: 97 % sent, 2 % failed, 1 % pending.
  await pool.query(
    `WITH e AS (
       INSERT INTO outbox_events (tenant_id, event_type, upload_id, upload_attempt, payload, expanded_at)
       SELECT tenant_id, 'upload.' || status, id, 1, '{}', now() FROM uploads WHERE status IN ('completed', 'failed')
       RETURNING id, tenant_id, event_type, upload_id)
     INSERT INTO deliveries (event_id, target_key, tenant_id, upload_id, upload_attempt, event, channel, target, payload, delivery_status)
     SELECT e.id, 'callback', e.tenant_id, e.upload_id, 1, e.event_type, 'webhook', 'https://example.com/hook', '{}',
            CASE WHEN u.seq % 100 = 0 THEN 'pending' WHEN u.seq % 100 < 3 THEN 'failed' ELSE 'sent' END
       FROM e JOIN uploads u ON u.id = e.upload_id`,
  );
  await pool.query(
    `SELECT graphile_worker.add_job('process-upload', json_build_object('uploadId', id), job_key => 'upload:' || id)
       FROM uploads WHERE status = 'uploaded' LIMIT $1`,
    [JOBS],
  );
  await pool.query('VACUUM ANALYZE');
}

interface Explained {
  pages: number;
  ms: number;
}

/** Shared pages touched (hit + read) and execution time of one run of `sql`. */
async function explain(pool: pg.Pool, sql: string): Promise<Explained> {
  const { rows } = await pool.query(`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${sql}`);
  const top = rows[0]['QUERY PLAN'][0] as { Plan: Record<string, number>; 'Execution Time': number };
  return { pages: (top.Plan['Shared Hit Blocks'] ?? 0) + (top.Plan['Shared Read Blocks'] ?? 0), ms: top['Execution Time'] };
}

async function timeEach(times: number, run: () => Promise<unknown>): Promise<number[]> {
  const ms: number[] = [];
  for (let i = 0; i < times; i++) {
    const started = performance.now();
    await run();
    ms.push(performance.now() - started);
  }
  return ms.sort((a, b) => a - b);
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;

/** Mean ms of one autocommit `UPDATE … WHERE id = $1` over `ids`. */
async function timeUpdates(pool: pg.Pool, sql: string, ids: string[]): Promise<number> {
  const started = performance.now();
  for (const id of ids) await pool.query(sql, [id]);
  return (performance.now() - started) / ids.length;
}

/** Rounds alternate triggers on and off, so load on the machine falls on both alike. */
async function writeCost(pool: pg.Pool): Promise<string[][]> {
  const ROUNDS = 6;
  const { rows } = await pool.query<{ id: string }>(`SELECT id FROM uploads WHERE status = 'completed' LIMIT $1`, [UPDATES]);
  const ids = rows.map((r) => r.id);
  const perRound = Math.ceil(ids.length / ROUNDS);
  const statusChange = `UPDATE uploads SET status = CASE status WHEN 'completed' THEN 'failed' ELSE 'completed' END, updated_at = now() WHERE id = $1`;
  const progress = `UPDATE uploads SET bytes_processed = bytes_processed + 1, updated_at = now() WHERE id = $1`;
  const result: string[][] = [];
  for (const [what, sql] of [['status change', statusChange], ['progress write (nothing counted changes)', progress]] as const) {
    let [on, off] = [0, 0];
    for (let round = 0; round < ROUNDS; round++) {
      const batch = ids.slice(round * perRound, (round + 1) * perRound);
      await pool.query('ALTER TABLE uploads DISABLE TRIGGER uploads_count_update');
      off += await timeUpdates(pool, sql, batch);
      await pool.query('ALTER TABLE uploads ENABLE TRIGGER uploads_count_update');
      on += await timeUpdates(pool, sql, batch);
    }
    [on, off] = [on / ROUNDS, off / ROUNDS];
    result.push([`one ${what}`, `${fixed(off, 3)} ms`, `${fixed(on, 3)} ms`, `${on >= off ? '+' : '−'}${fixed(Math.abs(on - off) * 1000, 0)} µs`]);
  }
  return result;
}

async function main(): Promise<void> {
  const adminUrl = process.env.DATABASE_URL ?? DEFAULT_ADMIN_URL;
  const database = randomDatabaseName();
  await adminExec(adminUrl, `CREATE DATABASE ${database}`);
  const pool = createPool(withDatabase(adminUrl, database), 'stream-api-bench-metrics', 4);
  try {
    await migrate(pool);
    process.stderr.write(`filling: ${int(UPLOADS)} uploads, their deliveries, ${int(JOBS)} queued jobs …\n`);
    const fillStarted = performance.now();
    await fill(pool);
    process.stderr.write(`filled in ${fixed((performance.now() - fillStarted) / 1000, 1)} s\n`);

    const registry = createDatabaseRegistry(pool);
    await registry.metrics(); // warm: plans, caches
    await pool.query(BEFORE_SQL);
    const before = await timeEach(SCRAPES, () => pool.query(BEFORE_SQL));
    const after = await timeEach(SCRAPES, () => registry.metrics());
    const [beforePlan, afterPlan] = [await explain(pool, BEFORE_SQL), await explain(pool, SNAPSHOT_SQL)];
    const counterRows = (await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM metric_counters')).rows[0]!.n;

    const counted = new Map<string, number>();
    for (const r of (await pool.query<{ metric: string; label: string; n: number }>('SELECT metric, label, sum(value)::bigint AS n FROM metric_counters GROUP BY 1, 2')).rows) {
      counted.set(`${r.metric}:${r.label}`, r.n);
    }
    const truth = (await pool.query<{ metric: string; label: string; n: number }>(TRUTH_SQL)).rows;
    const wrong = truth.filter((r) => (counted.get(`${r.metric}:${r.label}`) ?? 0) !== r.n);

    const { rows: sizes } = await pool.query<{ uploads: number; deliveries: number }>(
      `SELECT (SELECT count(*) FROM uploads)::int AS uploads, (SELECT count(*) FROM deliveries)::int AS deliveries`,
    );
    process.stdout.write(
      `\n/metrics scrape, database part: ${int(sizes[0]!.uploads)} uploads, ${int(sizes[0]!.deliveries)} deliveries, ` +
        `${int(JOBS)} queued jobs, ${counterRows} counter rows; ${SCRAPES} scrapes each\n\n`,
    );
    process.stdout.write(
      table(
        ['scrape', '>p50', '>p99', '>pages read (EXPLAIN BUFFERS)', '>execution (EXPLAIN ANALYZE)'],
        [
          ['(a) before: whole-table aggregates', `${fixed(pct(before, 50), 2)} ms`, `${fixed(pct(before, 99), 2)} ms`, int(beforePlan.pages), `${fixed(beforePlan.ms, 2)} ms`],
          ['(b) now: counters + jobs view (whole /metrics render)', `${fixed(pct(after, 50), 2)} ms`, `${fixed(pct(after, 99), 2)} ms`, int(afterPlan.pages), `${fixed(afterPlan.ms, 2)} ms`],
        ],
      ) + '\n',
    );
    process.stdout.write(`\nratio (a)/(b), p50: ${fixed(pct(before, 50) / pct(after, 50), 0)}×; counters equal the tables: ${wrong.length === 0 ? 'yes' : `NO ${JSON.stringify(wrong)}`}\n\n`);
    process.stdout.write(table(['write', '>without counting', '>with counting', '>cost'], await writeCost(pool)) + '\n');
    if (wrong.length > 0) process.exitCode = 1;
  } finally {
    await pool.end().catch(() => {});
    await dropBenchDatabase(adminUrl, database).catch((err) => process.stderr.write(`drop failed: ${String(err)}\n`));
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench metrics-scrape failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
