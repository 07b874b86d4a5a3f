// Gauges whose truth is in Postgres, read when Prometheus scrapes: any process (API, or a worker's
// METRICS_PORT) reports the same numbers, whichever process did the work. One query per scrape,
// shared by every gauge of that scrape.
import { Gauge, Registry } from 'prom-client';
import type pg from 'pg';
import { withTimeout } from './probe.ts';

const UPLOAD_STATUSES = ['uploaded', 'processing', 'completed', 'failed'] as const;
const DELIVERY_STATUSES = ['pending', 'sent', 'failed', 'skipped'] as const;
const QUERY_TIMEOUT_MS = 5000;

interface Snapshot {
  uploads: Map<string, number>;
  rowsLoaded: number;
  rowsRejected: number;
  deliveries: Map<string, number>;
  queue: Map<string, number>;
}

// Rows of completed uploads are loaded; a failed upload's rows were rolled back, but its rejected
// rows were still rejected. Queue: jobs a worker could take now (graphile-worker leaves jobs that
// used up their attempts in the table; they will never run and are not waiting), per known task —
// 0 rather than no series when idle.
const SNAPSHOT_SQL = `
  SELECT 'upload' AS kind, status AS key, count(*)::bigint AS n,
         coalesce(sum(rows_processed) FILTER (WHERE status = 'completed'), 0)::bigint AS loaded,
         coalesce(sum(rows_failed) FILTER (WHERE status IN ('completed', 'failed')), 0)::bigint AS rejected
    FROM uploads GROUP BY status
  UNION ALL
  SELECT 'delivery', delivery_status, count(*), 0, 0 FROM deliveries GROUP BY delivery_status
  UNION ALL
  SELECT 'queue', t.identifier, count(j.id), 0, 0
    FROM graphile_worker._private_tasks t
    LEFT JOIN graphile_worker._private_jobs j
      ON j.task_id = t.id AND j.locked_at IS NULL AND j.run_at <= now() AND j.attempts < j.max_attempts
   GROUP BY t.identifier`;

interface SnapshotRow {
  kind: 'upload' | 'delivery' | 'queue';
  key: string;
  n: number;
  loaded: number;
  rejected: number;
}

async function readSnapshot(pool: pg.Pool): Promise<Snapshot> {
  const { rows } = await withTimeout(pool.query<SnapshotRow>(SNAPSHOT_SQL), QUERY_TIMEOUT_MS);
  const snapshot: Snapshot = { uploads: new Map(), rowsLoaded: 0, rowsRejected: 0, deliveries: new Map(), queue: new Map() };
  for (const row of rows) {
    if (row.kind === 'upload') {
      snapshot.uploads.set(row.key, row.n);
      snapshot.rowsLoaded += row.loaded;
      snapshot.rowsRejected += row.rejected;
    } else if (row.kind === 'delivery') {
      snapshot.deliveries.set(row.key, row.n);
    } else {
      snapshot.queue.set(row.key, row.n);
    }
  }
  return snapshot;
}

/** A registry of the database-backed gauges over `pool`; merge it with the process registry to serve. */
export function createDatabaseRegistry(pool: pg.Pool): Registry {
  const registry = new Registry();
  // prom-client calls every collect() of a scrape synchronously before awaiting any: they share one query.
  let inFlight: Promise<Snapshot> | null = null;
  const snapshot = () =>
    (inFlight ??= readSnapshot(pool).finally(() => {
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

  gauge('stream_api_uploads', 'Uploads by status (retained uploads, read from Postgres at scrape time)', ['status'], (g, s) => {
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
