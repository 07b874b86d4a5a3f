// Reading the outbox and its audit trail for the API. Every query takes the caller's tenant id:
// another tenant's delivery is invisible. Writes by the dispatcher live in outbox.repository.ts.
import type pg from 'pg';

type Queryable = Pick<pg.ClientBase, 'query'>;

export type DeliveryStatus = 'pending' | 'sent' | 'failed' | 'skipped';
export const DELIVERY_STATUSES: readonly DeliveryStatus[] = ['pending', 'sent', 'failed', 'skipped'];

export interface DeliveryRow {
  id: string;
  seq: number;
  event_id: string;
  /** 'callback' (the upload's callbackUrl) or 'endpoint:<id>' */
  target_key: string;
  /** the endpoint it goes to; null for a callbackUrl delivery, and once its endpoint was deleted */
  endpoint_id: string | null;
  upload_id: string | null;
  /** null for an operational event (endpoint.disabled) */
  upload_attempt: number | null;
  event: string;
  channel: string;
  target: string | null;
  payload: Record<string, unknown>;
  delivery_status: DeliveryStatus;
  attempts: number;
  next_attempt_at: Date;
  locked_until: Date | null;
  last_error: string | null;
  delivered_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

/**
 * One attempt. Written as started (finished_at, duration_ms and the outcome NULL) before the request
 * is sent, finished after; one the dispatcher never finished is closed by the next claim with
 * error_code `interrupted`, finished_at set and duration_ms still NULL (nobody measured it).
 */
export interface AttemptRow {
  delivery_id: string;
  attempt: number;
  trigger: 'scheduled' | 'manual' | 'probe';
  started_at: Date;
  finished_at: Date | null;
  duration_ms: number | null;
  response_status: number | null;
  response_excerpt: string | null;
  error_code: string | null;
  error_message: string | null;
  next_attempt_at: Date | null;
}

const DELIVERY_COLUMNS = `id, seq, event_id, target_key, endpoint_id, upload_id, upload_attempt, event, channel, target, payload, delivery_status,
  attempts, next_attempt_at, locked_until, last_error, delivered_at, created_at, updated_at`;

export async function findDelivery(db: Queryable, tenantId: string, id: string): Promise<DeliveryRow | undefined> {
  const { rows } = await db.query<DeliveryRow>(
    `SELECT ${DELIVERY_COLUMNS} FROM deliveries WHERE tenant_id = $1 AND id = $2`,
    [tenantId, id],
  );
  return rows[0];
}

/** The upload's deliveries, newest first (a retried upload has one per processing attempt). */
export async function listUploadDeliveries(db: Queryable, tenantId: string, uploadId: string): Promise<DeliveryRow[]> {
  const { rows } = await db.query<DeliveryRow>(
    `SELECT ${DELIVERY_COLUMNS} FROM deliveries WHERE tenant_id = $1 AND upload_id = $2 ORDER BY seq DESC`,
    [tenantId, uploadId],
  );
  return rows;
}

/** Keyset page, newest first: rows with seq below `beforeSeq`; only those of `endpointId` when given. */
export async function listDeliveries(
  db: Queryable,
  tenantId: string,
  opts: { status?: DeliveryStatus; endpointId?: string; beforeSeq?: number; limit: number },
): Promise<DeliveryRow[]> {
  const { rows } = await db.query<DeliveryRow>(
    `SELECT ${DELIVERY_COLUMNS} FROM deliveries
      WHERE tenant_id = $1 AND ($2::text IS NULL OR delivery_status = $2) AND ($3::bigint IS NULL OR seq < $3)
        AND ($5::uuid IS NULL OR endpoint_id = $5)
      ORDER BY seq DESC LIMIT $4`,
    [tenantId, opts.status ?? null, opts.beforeSeq ?? null, opts.limit, opts.endpointId ?? null],
  );
  return rows;
}

/** All attempts of the given deliveries, oldest first. */
export async function listAttempts(db: Queryable, deliveryIds: readonly string[]): Promise<AttemptRow[]> {
  if (deliveryIds.length === 0) return [];
  const { rows } = await db.query<AttemptRow>(
    `SELECT delivery_id, attempt, trigger, started_at, finished_at, duration_ms, response_status, response_excerpt,
            error_code, error_message, next_attempt_at
       FROM delivery_attempts WHERE delivery_id = ANY($1::uuid[]) ORDER BY delivery_id, attempt`,
    [deliveryIds],
  );
  return rows;
}

export interface DeliverySummary {
  status: DeliveryStatus;
  attempts: number;
  lastError: string | null;
}

/** The latest delivery of an upload to its own callbackUrl, for its status response; null when it has none yet. */
export async function latestDeliverySummary(db: Queryable, tenantId: string, uploadId: string): Promise<DeliverySummary | null> {
  const { rows } = await db.query<{ delivery_status: DeliveryStatus; attempts: number; last_error: string | null }>(
    `SELECT delivery_status, attempts, last_error FROM deliveries
      WHERE tenant_id = $1 AND upload_id = $2 AND target_key = 'callback' ORDER BY seq DESC LIMIT 1`,
    [tenantId, uploadId],
  );
  const row = rows[0];
  return row ? { status: row.delivery_status, attempts: row.attempts, lastError: row.last_error } : null;
}

/**
 * Locks the delivery for a redelivery decision (in the caller's transaction). `in_flight`: a
 * dispatcher holds a live lease on it right now (judged by the database clock, like the lease).
 */
export async function lockDelivery(
  trx: pg.PoolClient,
  tenantId: string,
  id: string,
): Promise<(DeliveryRow & { in_flight: boolean }) | undefined> {
  const { rows } = await trx.query<DeliveryRow & { in_flight: boolean }>(
    `SELECT ${DELIVERY_COLUMNS}, (delivery_status = 'pending' AND locked_until > now()) IS TRUE AS in_flight
       FROM deliveries WHERE tenant_id = $1 AND id = $2 FOR UPDATE`,
    [tenantId, id],
  );
  return rows[0];
}

/**
 * Back to `pending`, due now, history kept. The next attempt is marked manual and opens a new retry
 * run; any stale lease is cleared, so a dispatcher still sending under it cannot record.
 */
export async function markForRedelivery(trx: pg.PoolClient, id: string): Promise<DeliveryRow> {
  const { rows } = await trx.query<DeliveryRow>(
    `UPDATE deliveries
        SET delivery_status = 'pending', next_attempt_at = now(), redeliver_requested = true,
            run_first_attempt = attempts + 1, locked_until = NULL, lease_token = NULL, updated_at = now()
      WHERE id = $1
  RETURNING ${DELIVERY_COLUMNS}`,
    [id],
  );
  return rows[0]!;
}
