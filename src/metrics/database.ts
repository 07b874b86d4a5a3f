// Gauges whose truth is in Postgres, read when Prometheus scrapes: any process reports the same
// numbers, whichever process did the work. One query per scrape, shared by every gauge of it.
//
// The query must stay cheap at any table size (a scrape every second against 1M uploads): counts
// and row sums come from metric_counters, which triggers keep as uploads and deliveries change
// (migrations/007_metrics.sql) — a few rows per database backend, never the tables themselves. The
// queue depth reads graphile-worker's public jobs view: its size is the jobs not yet done, not the
// uploads ever made.
import { Gauge, Registry } from 'prom-client';
import type pg from 'pg';
import { ORPHAN_SWEEP_TASK } from '../retention/orphans.ts';
import { PURGE_TASK } from '../retention/purge.ts';
import { PROCESS_UPLOAD_TASK } from '../uploads/uploads.repository.ts';
import { withTimeout } from './probe.ts';

const UPLOAD_STATUSES = ['uploaded', 'processing', 'completed', 'failed'] as const;
const DELIVERY_STATUSES = ['pending', 'sent', 'failed', 'skipped'] as const;
/** Reported (as 0 when idle) even before a job of theirs was ever queued. */
const KNOWN_TASKS = [PROCESS_UPLOAD_TASK, PURGE_TASK, ORPHAN_SWEEP_TASK] as const;
const QUERY_TIMEOUT_MS = 5000;
/** Counter rows above this (rows of backends that are gone pile up as connections come and go) → fold them. */
const FOLD_ABOVE_ROWS = 200;

interface Snapshot {
  uploads: Map<string, number>;
  rowsLoaded: number;
  rowsRejected: number;
  deliveries: Map<string, number>;
  queue: Map<string, number>;
}

/** The one query of a scrape (exported for bench/metrics-scrape.ts). */
// Queue: jobs a worker could take now (graphile-worker leaves jobs that used up their attempts in
// the table; they will never run and are not waiting).
export const SNAPSHOT_SQL = `
  SELECT metric, label, sum(value)::bigint AS n, count(*)::int AS counter_rows
    FROM metric_counters GROUP BY metric, label
  UNION ALL
  SELECT 'queue', task_identifier, count(*), 0
    FROM graphile_worker.jobs
   WHERE locked_at IS NULL AND run_at <= now() AND attempts < max_attempts
   GROUP BY task_identifier`;

interface SnapshotRow {
  metric: 'uploads' | 'rows_loaded' | 'rows_rejected' | 'deliveries' | 'queue';
  label: string;
  n: number;
  counter_rows: number;
}

async function readSnapshot(pool: pg.Pool, fold: () => void): Promise<Snapshot> {
  const { rows } = await withTimeout(pool.query<SnapshotRow>(SNAPSHOT_SQL), QUERY_TIMEOUT_MS);
  const snapshot: Snapshot = { uploads: new Map(), rowsLoaded: 0, rowsRejected: 0, deliveries: new Map(), queue: new Map() };
  let counterRows = 0;
  for (const row of rows) {
    counterRows += row.counter_rows;
    if (row.metric === 'uploads') snapshot.uploads.set(row.label, row.n);
    else if (row.metric === 'rows_loaded') snapshot.rowsLoaded += row.n;
    else if (row.metric === 'rows_rejected') snapshot.rowsRejected += row.n;
    else if (row.metric === 'deliveries') snapshot.deliveries.set(row.label, row.n);
    else snapshot.queue.set(row.label, row.n);
  }
  if (counterRows > FOLD_ABOVE_ROWS) fold();
  return snapshot;
}

/**
 * A registry of the database-backed gauges over `pool`; merge it with the process registry to serve.
 * A scrape that finds many counter rows folds them in the background (it changes no sum, only how
 * many rows the next scrape reads).
 */
export function createDatabaseRegistry(pool: pg.Pool): Registry {
  const registry = new Registry();
  let folding = false;
  const fold = () => {
    if (folding) return;
    folding = true;
    pool
      .query('SELECT fold_metric_counters()')
      .catch(() => {}) // only an optimisation: the next scrape tries again
      .finally(() => (folding = false));
  };
  // prom-client calls every collect() of a scrape synchronously before awaiting any: they share one query.
  let inFlight: Promise<Snapshot> | null = null;
  const snapshot = () =>
    (inFlight ??= readSnapshot(pool, fold).finally(() => {
      inFlight = null;
    }));

  /** Sets a gauge from the snapshot; when the database does not answer, the gauge has no samples. */
  const gauge = (name: string, help: string, labelNames: string[], fill: (g: Gauge, s: Snapshot) => void) =>
    new Gauge({
      name,
      help,
      labelNames,
      registers: [registry],
      async collect() {
        this.reset();
        const s = await snapshot().catch(() => null);
        if (s) fill(this, s);
      },
    });

  gauge('stream_api_uploads', 'Uploads by status (retained uploads, counted as they change)', ['status'], (g, s) => {
    for (const status of UPLOAD_STATUSES) g.set({ status }, s.uploads.get(status) ?? 0);
  });
  gauge('stream_api_rows_loaded', 'Rows loaded by completed uploads (retained uploads; drops when retention purges)', [], (g, s) =>
    g.set(s.rowsLoaded),
  );
  gauge('stream_api_rows_rejected', 'Rows rejected by validation in finished uploads (retained uploads)', [], (g, s) =>
    g.set(s.rowsRejected),
  );
  gauge('stream_api_deliveries', 'Notification deliveries by status (retained deliveries)', ['status'], (g, s) => {
    for (const status of DELIVERY_STATUSES) g.set({ status }, s.deliveries.get(status) ?? 0);
  });
  gauge('stream_api_queue_jobs_waiting', 'graphile-worker jobs due and not locked, by task', ['task'], (g, s) => {
    for (const task of KNOWN_TASKS) g.set({ task }, 0);
    for (const [task, n] of s.queue) g.set({ task }, n);
  });
  new Gauge({
    name: 'stream_api_metrics_database_up',
    help: '1 when the database answered this scrape, 0 when the database-backed gauges above are missing',
    registers: [registry],
    async collect() {
      this.set(await snapshot().then(() => 1, () => 0));
    },
  });
  return registry;
}
