// The SQL of an upload's life in the worker: claim, progress, complete, fail. Each change of status
// and its outbox event commit together (transactional outbox); ingest never talks to receivers and
// knows nothing of who listens.
import type pg from 'pg';
import { UPLOAD_EVENTS_CHANNEL, uploadChannel } from '../uploads/channels.ts';
import { StaleRun } from './failures.ts';

type Queryable = Pick<pg.ClientBase, 'query'>;

export interface ClaimedUpload {
  id: string;
  tenant_id: string;
  dataset: string;
  /** append | upsert | replace (migrations/016_loading_modes.sql); absent: append */
  mode?: 'append' | 'upsert' | 'replace';
  /** validate in full, load nothing (migrations/018_load_undo_and_dry_run.sql); absent: false */
  dry_run?: boolean;
  object_key: string;
  size_bytes: number;
  max_errors: number | null;
  max_error_ratio: number | null;
  attempt: number;
}

/** The database backend that ran an attempt's load: a pid, and its start time (a reused pid is another backend). */
export interface LoadBackend {
  pid: number;
  /** pg_stat_activity.backend_start as the database prints it (exact: a JS Date would drop the microseconds) */
  startedAt: string;
}

/**
 * Moves the upload to `processing` for a new attempt, with its `upload.processing` event in the same
 * statement; null when there is nothing to do (final or gone). `previousBackend` is the load backend
 * the previous attempt recorded, if it has one: the caller ends it (see endLoadBackend) before
 * loading, since that attempt may be frozen mid-COPY.
 */
export async function claimUpload(db: Queryable, uploadId: string): Promise<(ClaimedUpload & { previousBackend: LoadBackend | null }) | null> {
  const { rows } = await db.query<ClaimedUpload & { previous_pid: number | null; previous_start: string | null }>(
    `WITH previous AS (
       SELECT id, load_backend_pid, load_backend_start FROM uploads
        WHERE id = $1 AND status IN ('uploaded', 'processing') FOR UPDATE),
     claimed AS (
       UPDATE uploads u
        SET status = 'processing', attempt = attempt + 1, started_at = now(), completed_at = NULL,
            rows_processed = 0, rows_failed = 0, bytes_processed = 0, uncompressed_bytes_processed = NULL,
            rows_inserted = NULL, rows_updated = NULL,
            error_code = NULL, error = NULL,
            load_backend_pid = NULL, load_backend_start = NULL, updated_at = now()
       FROM previous WHERE u.id = previous.id
  RETURNING u.id, u.tenant_id, u.dataset, u.mode, u.dry_run, u.object_key, u.size_bytes, u.max_errors, u.max_error_ratio, u.attempt,
            u.started_at, previous.load_backend_pid AS previous_pid, previous.load_backend_start::text AS previous_start),
     started AS (
       INSERT INTO outbox_events (tenant_id, event_type, upload_id, upload_attempt, payload)
       SELECT tenant_id, 'upload.processing', id, attempt,
              jsonb_build_object('type', 'upload.processing', 'uploadId', id, 'status', 'processing', 'attempt', attempt,
                                 'timestamp', to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
         FROM claimed
       ON CONFLICT ON CONSTRAINT outbox_events_once DO NOTHING)
     SELECT id, tenant_id, dataset, mode, dry_run, object_key, size_bytes, max_errors, max_error_ratio, attempt, previous_pid, previous_start
       FROM claimed`,
    [uploadId],
  );
  const row = rows[0];
  if (!row) return null;
  await notifyUpload(db, row.id);
  const { previous_pid, previous_start, ...upload } = row;
  return {
    ...upload,
    previousBackend: previous_pid !== null && previous_start !== null ? { pid: previous_pid, startedAt: previous_start } : null,
  };
}

/**
 * Ends a previous attempt's load backend, if that very backend still runs: its open transaction
 * (row locks, unique-index entries of the rows it copied) would make this attempt's COPY wait for
 * ever when its worker is frozen. Waits up to `timeoutMs` for it to exit. Needs the same database
 * role as the workers (or pg_signal_backend). Returns whether a backend was ended.
 */
export async function endLoadBackend(db: Queryable, backend: LoadBackend, timeoutMs = 5000): Promise<boolean> {
  const { rows } = await db.query<{ ended: boolean }>(
    `SELECT pg_terminate_backend(pid, $3) AS ended FROM pg_stat_activity WHERE pid = $1 AND backend_start = $2::timestamptz`,
    [backend.pid, backend.startedAt, timeoutMs],
  );
  return rows[0]?.ended ?? false;
}

/**
 * Records the load connection's backend on the upload (outside the load transaction, so a takeover
 * sees it). Throws StaleRun when this attempt is no longer the current one.
 */
export async function recordLoadBackend(client: Queryable, upload: ClaimedUpload): Promise<void> {
  const { rowCount } = await client.query(
    `UPDATE uploads
        SET load_backend_pid = pg_backend_pid(),
            load_backend_start = (SELECT backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()),
            updated_at = now()
      WHERE id = $1 AND attempt = $2 AND status = 'processing'`,
    [upload.id, upload.attempt],
  );
  if (rowCount !== 1) throw new StaleRun(`upload ${upload.id}: attempt ${upload.attempt} was taken over before its load began`);
}

/** Whether the job this run was given is still locked by this run's worker (graphile_worker.jobs view). */
export async function holdsJob(db: Queryable, jobId: string, workerId: string | null): Promise<boolean> {
  const { rowCount } = await db.query('SELECT 1 FROM graphile_worker.jobs WHERE id = $1 AND locked_by = $2', [jobId, workerId]);
  return rowCount === 1;
}

export interface Counts {
  rowsProcessed: number;
  rowsFailed: number;
  /** stored bytes read: compressed ones for a gzip file (progress = this / size_bytes) */
  bytesProcessed: number;
  /** bytes of CSV the loader has read (after decompression) */
  uncompressedBytesProcessed: number;
  /** null until the stored object's first bytes have been read */
  compression: 'gzip' | 'none' | null;
}

/** Progress from outside the load transaction, so pollers and live streams see it move. */
export async function reportProgress(db: Queryable, uploadId: string, attempt: number, counts: Counts): Promise<void> {
  await db.query(
    `UPDATE uploads SET rows_processed = $3, rows_failed = $4, bytes_processed = $5, uncompressed_bytes_processed = $6,
            compression = $7, updated_at = now()
      WHERE id = $1 AND attempt = $2 AND status = 'processing'`,
    [uploadId, attempt, counts.rowsProcessed, counts.rowsFailed, counts.bytesProcessed, counts.uncompressedBytesProcessed, counts.compression],
  );
  await notifyUpload(db, uploadId);
}

/** In the load transaction (clock_timestamp(): now() would be when the long transaction began): final counts, status `completed`, the outbox row, the notification. */
export async function completeUpload(
  trx: Queryable,
  upload: ClaimedUpload,
  final: Counts & { unknownColumns: string[]; csvHeader: string | null; rowsInserted?: number | null; rowsUpdated?: number | null },
): Promise<void> {
  const { rowCount } = await trx.query(
    `UPDATE uploads
        SET status = 'completed', rows_processed = $3, rows_failed = $4, bytes_processed = $5,
            unknown_columns = $6, csv_header = $7, uncompressed_bytes_processed = $8, compression = $9,
            rows_inserted = $10, rows_updated = $11,
            -- the load backend commits this very transaction: nothing of it is left for a later attempt to end
            load_backend_pid = NULL, load_backend_start = NULL,
            completed_at = clock_timestamp(), updated_at = clock_timestamp()
      WHERE id = $1 AND attempt = $2 AND status = 'processing'`,
    [upload.id, upload.attempt, final.rowsProcessed, final.rowsFailed, final.bytesProcessed, final.unknownColumns, final.csvHeader, final.uncompressedBytesProcessed, final.compression,
      final.rowsInserted ?? null, final.rowsUpdated ?? null],
  );
  // Another attempt took over (this worker was presumed dead): its load, not ours, may commit.
  if (rowCount !== 1) throw new StaleRun(`upload ${upload.id}: attempt ${upload.attempt} is no longer current`);
  await insertEvent(trx, upload.id, 'upload.completed');
  await notifyUpload(trx, upload.id);
}

/**
 * Status `failed` with a stable code, and its outbox row, in one transaction. Loaded rows stay
 * rolled back. Throws StaleRun when the attempt is no longer current (the stale-run rule).
 */
export async function failUpload(
  pool: pg.Pool,
  upload: ClaimedUpload,
  error: { code: string; message: string; csvHeader?: string | null },
  counts: Counts,
): Promise<void> {
  const failed = await inTransaction(pool, (trx) =>
    markFailed(trx, upload.id, 'AND attempt = $6 AND status = \'processing\'', [upload.attempt], {
      code: error.code,
      message: error.message,
      csvHeader: error.csvHeader ?? null,
      rowsFailed: counts.rowsFailed,
      bytesProcessed: counts.bytesProcessed,
      uncompressedBytesProcessed: counts.uncompressedBytesProcessed,
      compression: counts.compression,
    }),
  );
  if (!failed) throw new StaleRun(`upload ${upload.id}: attempt ${upload.attempt} is no longer current; its failure is not recorded`);
}

/**
 * Lifecycle sweep, one upload: `failed` with `worker_lost` (and its outbox row and NOTIFY, in one
 * transaction) when it is unfinished, untouched for `graceSeconds`, and its job is gone or can never
 * run again (attempts exhausted, not locked). The exhausted job is removed, so a retry starts clean.
 * Returns whether it was marked. Safe to run from any number of workers at once (the row lock and
 * the re-checked condition make it happen once).
 */
export async function failLostUpload(pool: pg.Pool, uploadId: string, graceSeconds: number): Promise<boolean> {
  return inTransaction(pool, async (trx) => {
    const { rows } = await trx.query<{ last_error: string | null }>(
      `SELECT j.last_error FROM graphile_worker.jobs j WHERE j.key = $1`,
      [jobKeyOf(uploadId)],
    );
    const lastError = rows[0]?.last_error ?? null;
    const marked = await markFailed(
      trx,
      uploadId,
      `AND status IN ('uploaded', 'processing') AND updated_at < now() - make_interval(secs => $6)
       AND NOT EXISTS (SELECT 1 FROM graphile_worker.jobs j
                        WHERE j.key = $7 AND (j.locked_at IS NOT NULL OR j.attempts < j.max_attempts))`,
      [graceSeconds, jobKeyOf(uploadId)],
      {
        code: 'worker_lost',
        message:
          'processing stopped without a result and no attempt is left (its worker died, froze or lost the database)' +
          (lastError ? `; last error: ${lastError}` : ''),
        csvHeader: null,
        rowsFailed: null,
        bytesProcessed: null,
        uncompressedBytesProcessed: null,
        compression: null,
      },
    );
    if (marked) await trx.query('SELECT graphile_worker.remove_job($1)', [jobKeyOf(uploadId)]);
    return marked;
  });
}

/** Unfinished uploads that may be lost (the same job condition as failLostUpload, which decides). */
export async function findLostUploads(db: Queryable, graceSeconds: number, limit = 100): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>(
    `SELECT u.id FROM uploads u
      WHERE u.status IN ('uploaded', 'processing') AND u.updated_at < now() - make_interval(secs => $1)
        AND NOT EXISTS (SELECT 1 FROM graphile_worker.jobs j
                         WHERE j.key = 'upload:' || u.id AND (j.locked_at IS NOT NULL OR j.attempts < j.max_attempts))
      ORDER BY u.updated_at LIMIT $2`,
    [graceSeconds, limit],
  );
  return rows.map((r) => r.id);
}

/** The one failure write (failUpload and the sweep): status, code, counters, outbox row, NOTIFY. */
async function markFailed(
  trx: Queryable,
  uploadId: string,
  guard: string,
  guardParams: unknown[],
  // a null count keeps what the last progress write recorded
  error: { code: string; message: string; csvHeader: string | null } & { [K in Exclude<keyof Counts, 'rowsProcessed'>]: Counts[K] | null },
): Promise<boolean> {
  const tail = 6 + guardParams.length; // the guard's parameters are $6…; these follow them
  const { rowCount } = await trx.query(
    `UPDATE uploads
        SET status = 'failed', error_code = $2, error = left($3, 4000), rows_processed = 0,
            rows_failed = COALESCE($4, rows_failed), bytes_processed = COALESCE($5, bytes_processed),
            csv_header = COALESCE($${tail}, csv_header),
            uncompressed_bytes_processed = COALESCE($${tail + 1}, uncompressed_bytes_processed),
            compression = COALESCE($${tail + 2}, compression),
            -- An attempt that failed by itself has ended its load transaction: a pooled connection that a
            -- retry must never terminate. A lost worker's backend may still hold its locks (frozen): kept.
            load_backend_pid = CASE WHEN $2 = 'worker_lost' THEN load_backend_pid END,
            load_backend_start = CASE WHEN $2 = 'worker_lost' THEN load_backend_start END,
            completed_at = clock_timestamp(), updated_at = clock_timestamp()
      WHERE id = $1 ${guard}`,
    [uploadId, error.code, error.message, error.rowsFailed, error.bytesProcessed, ...guardParams, error.csvHeader, error.uncompressedBytesProcessed, error.compression],
  );
  if (rowCount !== 1) return false;
  await insertEvent(trx, uploadId, 'upload.failed');
  await notifyUpload(trx, uploadId);
  return true;
}

async function inTransaction<T>(pool: pg.Pool, work: (trx: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken = false;
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    broken = !(await client.query('ROLLBACK').then(() => true, () => false));
    throw err;
  } finally {
    client.release(broken);
  }
}

function jobKeyOf(uploadId: string): string {
  return `upload:${uploadId}`;
}

export async function markObjectDeleted(db: Queryable, uploadId: string): Promise<void> {
  await db.query('UPDATE uploads SET object_deleted_at = now() WHERE id = $1', [uploadId]);
}

/**
 * The outbox event: what happened, to which upload, with its payload frozen now — and nothing about
 * who hears of it (notify/ expands events into deliveries, one per target). The unique key (upload,
 * type, attempt) makes a re-run unable to write it twice.
 */
async function insertEvent(trx: Queryable, uploadId: string, type: 'upload.completed' | 'upload.failed'): Promise<void> {
  await trx.query(
    `INSERT INTO outbox_events (tenant_id, event_type, upload_id, upload_attempt, payload, created_at)
     SELECT u.tenant_id, $2, u.id, u.attempt,
            jsonb_build_object(
              'type', $2::text, 'uploadId', u.id, 'status', u.status,
              'rowsProcessed', u.rows_processed, 'rowsFailed', u.rows_failed,
              'timestamp', to_char(c.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
            || CASE WHEN u.error IS NULL THEN '{}'::jsonb
                    ELSE jsonb_build_object('error', u.error, 'errorCode', u.error_code) END
            -- a dry run says so: its rows were validated, not loaded
            || CASE WHEN u.dry_run THEN '{"dryRun": true}'::jsonb ELSE '{}'::jsonb END,
            c.at
       -- clock_timestamp(): in the load transaction now() is when the load began, minutes early
       FROM uploads u, (SELECT clock_timestamp() AS at) c WHERE u.id = $1
     ON CONFLICT ON CONSTRAINT outbox_events_once DO NOTHING`,
    [uploadId, type],
  );
}

/** NOTIFY on the upload's channel and the all-uploads channel; delivered when the transaction commits. */
export async function notifyUpload(db: Queryable, uploadId: string): Promise<void> {
  await db.query(
    `SELECT pg_notify($2, e::text), pg_notify($3, e::text)
       FROM (SELECT json_build_object(
               'uploadId', id, 'tenantId', tenant_id, 'status', status, 'attempt', attempt,
               'rowsProcessed', rows_processed, 'rowsFailed', rows_failed,
               'bytesProcessed', bytes_processed, 'sizeBytes', size_bytes,
               -- NOTIFY payloads are limited to 8000 bytes: never let a long message fail the transaction
               'error', CASE WHEN error IS NULL THEN NULL ELSE json_build_object('code', error_code, 'message', left(error, 1000)) END,
               'at', clock_timestamp()) AS e
               FROM uploads WHERE id = $1) s`,
    [uploadId, uploadChannel(uploadId), UPLOAD_EVENTS_CHANNEL],
  );
}
