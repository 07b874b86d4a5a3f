// The SQL of retention: what has expired, and deleting it in bounded batches. "Expired" means
// settled and untouched for `days`: an upload that is uploaded/processing, or a delivery still
// pending, is never touched however old it is.
import type pg from 'pg';

type Queryable = Pick<pg.Pool, 'query'>;

export interface ExpiredUpload {
  id: string;
  object_key: string;
  /** the object is known to be gone already (deleted after a successful load) */
  object_deleted: boolean;
}

/** updated_at, not created_at: a failed upload retried last week is kept until its retry has aged too. */
export async function findExpiredUploads(
  db: Queryable,
  days: number,
  limit: number,
  skipIds: readonly string[] = [],
): Promise<ExpiredUpload[]> {
  const { rows } = await db.query<ExpiredUpload>(
    `SELECT id, object_key, object_deleted_at IS NOT NULL AS object_deleted FROM uploads
      WHERE status IN ('completed', 'failed') AND updated_at < now() - make_interval(days => $1)
        AND id <> ALL($3::uuid[])
      ORDER BY updated_at LIMIT $2`,
    [days, limit, skipIds],
  );
  return rows;
}

/**
 * Deletes these uploads if they are still expired (a retry may have started since they were found).
 * Their upload_errors and idempotency records go with them (ON DELETE CASCADE).
 */
export async function deleteExpiredUploads(db: Queryable, ids: readonly string[], days: number): Promise<number> {
  if (ids.length === 0) return 0;
  const { rowCount } = await db.query(
    `DELETE FROM uploads
      WHERE id = ANY($1::uuid[]) AND status IN ('completed', 'failed')
        AND updated_at < now() - make_interval(days => $2)`,
    [ids, days],
  );
  return rowCount ?? 0;
}

/** Settled deliveries (and, by cascade, their attempts) older than `days`; at most `limit` per call. */
export async function deleteExpiredDeliveries(db: Queryable, days: number, limit: number): Promise<number> {
  const { rowCount } = await db.query(
    `DELETE FROM deliveries WHERE id IN (
       SELECT d.id FROM deliveries d
        WHERE d.delivery_status <> 'pending' AND d.updated_at < now() - make_interval(days => $1)
          AND NOT EXISTS (SELECT 1 FROM uploads u
                           WHERE u.id = d.upload_id AND u.status IN ('uploaded', 'processing'))
        LIMIT $2)`,
    [days, limit],
  );
  return rowCount ?? 0;
}

/** Old attempts of deliveries that are kept (recently redelivered ones): their history is trimmed. */
export async function deleteExpiredAttempts(db: Queryable, days: number, limit: number): Promise<number> {
  const { rowCount } = await db.query(
    `DELETE FROM delivery_attempts WHERE id IN (
       SELECT a.id FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id
        WHERE a.started_at < now() - make_interval(days => $1) AND d.delivery_status <> 'pending'
          AND NOT EXISTS (SELECT 1 FROM uploads u
                           WHERE u.id = d.upload_id AND u.status IN ('uploaded', 'processing'))
        LIMIT $2)`,
    [days, limit],
  );
  return rowCount ?? 0;
}
