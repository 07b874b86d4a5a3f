// The SQL of retention: what has expired, and deleting it in bounded batches. "Expired" means
// settled and untouched for `days`: an upload that is uploaded/processing, or a delivery still
// pending, is never touched however old it is. Also the orphan sweep's one question: which listed
// keys does no upload reference?
import type pg from 'pg';

type Queryable = Pick<pg.Pool, 'query'>;

export interface ExpiredUpload {
  id: string;
  object_key: string;
  /** the object was still stored when the purge marked it (not deleted after a successful load) */
  had_object: boolean;
}

/**
 * Marks up to `limit` expired uploads as purged: their object counts as gone from now on
 * (object_deleted_at set), so `POST /uploads/:id/retry` refuses them with 410 before its object is
 * touched. Rows locked by someone else right now (a retry deciding) are skipped this run; the
 * expiry condition is evaluated on the locked row. updated_at is not changed, so a row the purge
 * marked but did not delete (it stopped midway) is still expired next run.
 *
 * updated_at, not created_at: a failed upload retried last week is kept until its retry has aged too.
 */
export async function markExpiredUploads(db: Queryable, days: number, limit: number): Promise<ExpiredUpload[]> {
  const { rows } = await db.query<ExpiredUpload>(
    `WITH expired AS (
       SELECT id, object_deleted_at IS NULL AS had_object FROM uploads
        WHERE status IN ('completed', 'failed') AND updated_at < now() - make_interval(days => $1)
        ORDER BY updated_at LIMIT $2
        FOR UPDATE SKIP LOCKED)
     UPDATE uploads u SET object_deleted_at = COALESCE(u.object_deleted_at, now())
       FROM expired WHERE u.id = expired.id
  RETURNING u.id, u.object_key, expired.had_object`,
    [days, limit],
  );
  return rows;
}

/**
 * Deletes these uploads if they are still expired. Their upload_errors and idempotency records go
 * with them (ON DELETE CASCADE).
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

/**
 * Of these stored keys, the ones no upload references (no row with that object_key whose object
 * is not marked deleted) and no pending direct upload holds (its object exists from the moment the
 * store completes it until the transaction that records the upload commits — and S3 dates it from
 * when its multipart upload began, hours before). One query for a whole listed page, one snapshot:
 * a completion swaps the pending row for the upload row in one transaction, so a key is seen held
 * by one or the other.
 */
export async function unreferencedKeys(db: Queryable, keys: readonly string[]): Promise<string[]> {
  if (keys.length === 0) return [];
  const { rows } = await db.query<{ key: string }>(
    `SELECT k.key FROM unnest($1::text[]) AS k(key)
      WHERE NOT EXISTS (SELECT 1 FROM uploads u WHERE u.object_key = k.key AND u.object_deleted_at IS NULL)
        AND NOT EXISTS (SELECT 1 FROM direct_uploads d WHERE d.object_key = k.key)`,
    [keys],
  );
  return rows.map((r) => r.key);
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

/**
 * Outbox events older than `days`, already expanded, none of whose deliveries is left (the purge of
 * deliveries went first); at most `limit` per call. An unexpanded event is never purged.
 */
export async function deleteExpiredEvents(db: Queryable, days: number, limit: number): Promise<number> {
  const { rowCount } = await db.query(
    `DELETE FROM outbox_events WHERE id IN (
       SELECT e.id FROM outbox_events e
        WHERE e.created_at < now() - make_interval(days => $1) AND e.expanded_at IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id)
        LIMIT $2)`,
    [days, limit],
  );
  return rowCount ?? 0;
}
