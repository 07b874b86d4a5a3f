// Outbox rows for dispatcher tests: the event written by the real finalize code (upload-state.ts) and
// expanded into deliveries by the real expansion (notify/expand.ts) — or, for volume, events and
// their deliveries by one bulk INSERT of the same shape.
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { completeUpload, failUpload, type ClaimedUpload } from '../../src/ingest/upload-state.ts';
import type { AttemptRow } from '../../src/notify/deliveries.repository.ts';
import { expandAll } from '../../src/notify/expand.ts';

export interface FinishOptions {
  tenantId: string;
  callbackUrl?: string | null;
  channel?: 'webhook' | 'slack';
  outcome?: 'completed' | 'failed';
  rowsProcessed?: number;
  rowsFailed?: number;
  /** roll the final transaction back instead of committing it */
  rollback?: boolean;
  /** false: leave the event unexpanded (as if no dispatcher had run yet); deliveryId is then null */
  expand?: boolean;
}

/**
 * An upload in `processing`, then its final transaction exactly as the worker runs it, then the
 * expansion of its event as a dispatcher runs it; `deliveryId` is the callbackUrl delivery's.
 */
export async function finishUpload(pool: pg.Pool, opts: FinishOptions): Promise<{ uploadId: string; deliveryId: string | null }> {
  const uploadId = randomUUID();
  await pool.query(
    `INSERT INTO uploads (id, tenant_id, dataset, filename, size_bytes, sha256, object_key, status, attempt,
                          callback_url, callback_channel, started_at)
     VALUES ($1, $2, 'webhook_events', 'test.csv', 100, repeat('0', 64), $5, 'processing', 1, $3, $4, now())`,
    [uploadId, opts.tenantId, opts.callbackUrl ?? null, opts.channel ?? 'webhook', `uploads/${uploadId}.csv`],
  );
  const claimed: ClaimedUpload = {
    id: uploadId, tenant_id: opts.tenantId, dataset: 'webhook_events', object_key: `uploads/${uploadId}.csv`,
    size_bytes: 100, max_errors: null, max_error_ratio: null, attempt: 1,
  };
  const counts = { rowsProcessed: opts.rowsProcessed ?? 10, rowsFailed: opts.rowsFailed ?? 2, bytesProcessed: 100, uncompressedBytesProcessed: 100, compression: 'none' as const };
  if (opts.outcome === 'failed') {
    await failUpload(pool, claimed, { code: 'too_many_errors', message: 'more than 5 rows were rejected' }, counts);
  } else {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await completeUpload(client, claimed, { ...counts, unknownColumns: [], csvHeader: 'a,b' });
      await client.query(opts.rollback ? 'ROLLBACK' : 'COMMIT');
    } finally {
      client.release();
    }
  }
  if (opts.expand === false) return { uploadId, deliveryId: null };
  if (opts.rollback) {
    await expandAll(pool); // nothing to expand: the event rolled back with the status
    return { uploadId, deliveryId: null };
  }
  // A running dispatcher may be expanding the event right now (expandAll skips an event locked by
  // another expansion): wait for its deliveries to commit.
  for (const until = Date.now() + 10_000; ; ) {
    await expandAll(pool);
    const { rows } = await pool.query<{ id: string }>(
      `SELECT id FROM deliveries WHERE upload_id = $1 AND target_key = 'callback'`,
      [uploadId],
    );
    if (rows[0]) return { uploadId, deliveryId: rows[0].id };
    if (Date.now() > until) throw new Error(`upload ${uploadId}: its event was not expanded in 10 s`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** `count` completed uploads with a pending webhook delivery each (and its expanded event), in one statement. */
export async function insertPendingDeliveries(pool: pg.Pool, tenantId: string, target: string, count: number): Promise<string[]> {
  const { rows } = await pool.query<{ id: string }>(
    `WITH u AS (
       INSERT INTO uploads (id, tenant_id, dataset, filename, size_bytes, sha256, object_key, status, attempt, callback_url)
       SELECT gen_random_uuid(), $1, 'webhook_events', 'bulk.csv', 1, repeat('0', 64), 'uploads/bulk-' || g, 'completed', 1, $2
         FROM generate_series(1, $3) g
       RETURNING id, tenant_id, callback_url),
     e AS (
       INSERT INTO outbox_events (tenant_id, event_type, upload_id, upload_attempt, payload, expanded_at)
       SELECT tenant_id, 'upload.completed', id, 1,
              jsonb_build_object('type', 'upload.completed', 'uploadId', id, 'status', 'completed',
                                 'rowsProcessed', 1, 'rowsFailed', 0, 'timestamp', now()),
              now()
         FROM u
       RETURNING id, tenant_id, upload_id, payload)
     INSERT INTO deliveries (event_id, target_key, tenant_id, upload_id, upload_attempt, event, channel, target, payload)
     SELECT e.id, 'callback', e.tenant_id, e.upload_id, 1, 'upload.completed', 'webhook', $2, e.payload
       FROM e
     RETURNING id`,
    [tenantId, target, count],
  );
  return rows.map((r) => r.id);
}

export interface DeliveryState {
  delivery_status: string;
  attempts: number;
  last_error: string | null;
  delivered_at: Date | null;
  next_attempt_at: Date;
}

export async function deliveryState(pool: pg.Pool, id: string): Promise<DeliveryState> {
  const { rows } = await pool.query<DeliveryState>(
    'SELECT delivery_status, attempts, last_error, delivered_at, next_attempt_at FROM deliveries WHERE id = $1',
    [id],
  );
  if (!rows[0]) throw new Error(`no delivery ${id}`);
  return rows[0];
}

/** An attempt as the audit table holds it (the delivery id is implied). */
export type AttemptState = Omit<AttemptRow, 'delivery_id'>;

export async function attemptsOf(pool: pg.Pool, id: string): Promise<AttemptState[]> {
  const { rows } = await pool.query<AttemptState>(
    `SELECT attempt, trigger, started_at, finished_at, duration_ms, response_status, response_excerpt, error_code,
            error_message, next_attempt_at FROM delivery_attempts WHERE delivery_id = $1 ORDER BY attempt`,
    [id],
  );
  return rows;
}

/** Polls until the delivery leaves `pending` (or reaches one of `statuses`). */
export async function waitForDelivery(pool: pg.Pool, id: string, statuses = ['sent', 'failed'], timeoutMs = 20_000): Promise<DeliveryState> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const state = await deliveryState(pool, id);
    if (statuses.includes(state.delivery_status)) return state;
    if (Date.now() > until) throw new Error(`delivery ${id} still ${state.delivery_status} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
