// The SQL of an upload's life in the worker: claim, progress, complete, fail. The final status and
// the outbox row always commit together (transactional outbox); ingest never talks to receivers.
import type pg from 'pg';
import { UPLOAD_EVENTS_CHANNEL, uploadChannel } from '../uploads/channels.ts';

type Queryable = Pick<pg.ClientBase, 'query'>;

export interface ClaimedUpload {
  id: string;
  tenant_id: string;
  dataset: string;
  object_key: string;
  size_bytes: number;
  max_errors: number | null;
  max_error_ratio: number | null;
  attempt: number;
}

/** Moves the upload to `processing` for a new attempt; null when there is nothing to do (final or gone). */
export async function claimUpload(db: Queryable, uploadId: string): Promise<ClaimedUpload | null> {
  const { rows } = await db.query<ClaimedUpload>(
    `UPDATE uploads
        SET status = 'processing', attempt = attempt + 1, started_at = now(), completed_at = NULL,
            rows_processed = 0, rows_failed = 0, bytes_processed = 0, error_code = NULL, error = NULL,
            updated_at = now()
      WHERE id = $1 AND status IN ('uploaded', 'processing')
  RETURNING id, tenant_id, dataset, object_key, size_bytes, max_errors, max_error_ratio, attempt`,
    [uploadId],
  );
  const upload = rows[0] ?? null;
  if (upload) await notifyUpload(db, upload.id);
  return upload;
}

export interface Counts {
  rowsProcessed: number;
  rowsFailed: number;
  bytesProcessed: number;
}

/** Progress from outside the load transaction, so pollers and live streams see it move. */
export async function reportProgress(db: Queryable, uploadId: string, attempt: number, counts: Counts): Promise<void> {
  await db.query(
    `UPDATE uploads SET rows_processed = $3, rows_failed = $4, bytes_processed = $5, updated_at = now()
      WHERE id = $1 AND attempt = $2 AND status = 'processing'`,
    [uploadId, attempt, counts.rowsProcessed, counts.rowsFailed, counts.bytesProcessed],
  );
  await notifyUpload(db, uploadId);
}

/** In the load transaction (clock_timestamp(): now() would be when the long transaction began): final counts, status `completed`, the outbox row, the notification. */
export async function completeUpload(
  trx: Queryable,
  upload: ClaimedUpload,
  final: Counts & { unknownColumns: string[]; csvHeader: string | null },
): Promise<void> {
  const { rowCount } = await trx.query(
    `UPDATE uploads
        SET status = 'completed', rows_processed = $3, rows_failed = $4, bytes_processed = $5,
            unknown_columns = $6, csv_header = $7, completed_at = clock_timestamp(), updated_at = clock_timestamp()
      WHERE id = $1 AND attempt = $2 AND status = 'processing'`,
    [upload.id, upload.attempt, final.rowsProcessed, final.rowsFailed, final.bytesProcessed, final.unknownColumns, final.csvHeader],
  );
  // Another attempt took over (this worker was presumed dead): its load, not ours, may commit.
  if (rowCount !== 1) throw new Error(`upload ${upload.id} attempt ${upload.attempt} is no longer current`);
  await insertOutboxRow(trx, upload.id, 'upload.completed');
  await notifyUpload(trx, upload.id);
}

/** Status `failed` with a stable code, and its outbox row, in one transaction. Loaded rows stay rolled back. */
export async function failUpload(
  pool: pg.Pool,
  upload: ClaimedUpload,
  error: { code: string; message: string; csvHeader?: string | null },
  counts: Counts,
): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const { rowCount } = await client.query(
      `UPDATE uploads
          SET status = 'failed', error_code = $3, error = left($4, 4000), rows_processed = 0, rows_failed = $5,
              bytes_processed = $6, csv_header = COALESCE($7, csv_header), completed_at = clock_timestamp(), updated_at = clock_timestamp()
        WHERE id = $1 AND attempt = $2 AND status = 'processing'`,
      [upload.id, upload.attempt, error.code, error.message, counts.rowsFailed, counts.bytesProcessed, error.csvHeader ?? null],
    );
    if (rowCount === 1) {
      await insertOutboxRow(client, upload.id, 'upload.failed');
      await notifyUpload(client, upload.id);
    }
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

export async function markObjectDeleted(db: Queryable, uploadId: string): Promise<void> {
  await db.query('UPDATE uploads SET object_deleted_at = now() WHERE id = $1', [uploadId]);
}

/**
 * The outbox row: payload frozen now. No callback → `none`/`skipped`, so the audit is still complete.
 * The unique key (upload, event, attempt) makes a re-run unable to enqueue twice.
 */
async function insertOutboxRow(trx: Queryable, uploadId: string, event: 'upload.completed' | 'upload.failed'): Promise<void> {
  await trx.query(
    `INSERT INTO deliveries (tenant_id, upload_id, upload_attempt, event, channel, target, payload, delivery_status)
     SELECT u.tenant_id, u.id, u.attempt, $2,
            CASE WHEN u.callback_url IS NULL THEN 'none' ELSE u.callback_channel END,
            u.callback_url,
            jsonb_build_object(
              'type', $2::text, 'uploadId', u.id, 'status', u.status,
              'rowsProcessed', u.rows_processed, 'rowsFailed', u.rows_failed,
              'timestamp', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
            || CASE WHEN u.error IS NULL THEN '{}'::jsonb
                    ELSE jsonb_build_object('error', u.error, 'errorCode', u.error_code) END,
            CASE WHEN u.callback_url IS NULL THEN 'skipped' ELSE 'pending' END
       FROM uploads u WHERE u.id = $1
     ON CONFLICT ON CONSTRAINT deliveries_once DO NOTHING`,
    [uploadId, event],
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
               'at', now()) AS e
               FROM uploads WHERE id = $1) s`,
    [uploadId, uploadChannel(uploadId), UPLOAD_EVENTS_CHANNEL],
  );
}
