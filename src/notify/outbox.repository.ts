// The dispatcher's SQL: claim due deliveries under a fenced lease, record each attempt with its
// outcome, give back a lease, and tell when the next delivery falls due. Every function is one
// statement, so none of them holds a transaction open across an HTTP call.
import type pg from 'pg';
import type { Outcome } from './retry-policy.ts';
import type { AttemptResult } from './types.ts';

type Queryable = Pick<pg.Pool, 'query'>;

export interface ClaimedDelivery {
  id: string;
  tenant_id: string;
  channel: string;
  target: string;
  payload: Record<string, unknown>;
  /** attempts recorded so far; this claim's attempt is number attempts + 1 */
  attempts: number;
  run_first_attempt: number;
  /** the attempt is a manual redelivery */
  manual: boolean;
  /** proves this claim still owns the delivery when the attempt is recorded */
  lease_token: string;
  /** signing secrets at claim time: the current one, then the previous one during rotation */
  secrets: string[];
}

/**
 * Claims up to `limit` due rows (FOR UPDATE SKIP LOCKED, so concurrent dispatchers take disjoint
 * rows) and leases each for `leaseMs` under a fresh token. A dispatcher that dies mid-send leaves a
 * lease that lapses; the row is then claimed again and sent with the same id (at-least-once).
 */
export async function claimDue(db: Queryable, limit: number, leaseMs: number): Promise<ClaimedDelivery[]> {
  const { rows } = await db.query<ClaimedDelivery>(
    `WITH due AS (
       SELECT id FROM deliveries
        WHERE delivery_status = 'pending' AND next_attempt_at <= now()
          AND (locked_until IS NULL OR locked_until < now())
        ORDER BY next_attempt_at
        LIMIT $1
        FOR UPDATE SKIP LOCKED)
     UPDATE deliveries d
        SET locked_until = now() + make_interval(secs => $2::double precision / 1000),
            lease_token = gen_random_uuid()
       FROM due, tenants t
      WHERE d.id = due.id AND t.id = d.tenant_id
  RETURNING d.id, d.tenant_id, d.channel, d.target, d.payload, d.attempts, d.run_first_attempt,
            d.redeliver_requested AS manual, d.lease_token,
            array_remove(ARRAY[t.webhook_secret,
              CASE WHEN t.previous_secret_expires_at > now() THEN t.previous_webhook_secret END], NULL) AS secrets`,
    [limit, leaseMs],
  );
  return rows;
}

export interface AttemptRecord {
  number: number;
  startedAt: Date;
  result: AttemptResult;
  outcome: Outcome;
}

/**
 * The delivery's new state and its attempt's audit row, in one statement (one transaction). Both
 * happen only while `lease_token` is still the delivery's token: false means the lease was lost
 * (it lapsed and another dispatcher claimed the row, or it was redelivered) and nothing was written.
 */
export async function recordAttempt(db: Queryable, delivery: ClaimedDelivery, attempt: AttemptRecord): Promise<boolean> {
  const { result, outcome } = attempt;
  const nextAttemptAt = outcome.status === 'pending' ? outcome.nextAttemptAt : null;
  const lastError = result.ok ? null : [result.errorCode, result.errorMessage].filter(Boolean).join(': ');
  const { rowCount } = await db.query(
    `WITH settled AS (
       UPDATE deliveries
          SET delivery_status = $3::text, attempts = $4, next_attempt_at = COALESCE($5::timestamptz, next_attempt_at),
              locked_until = NULL, lease_token = NULL, last_error = $6, redeliver_requested = false,
              delivered_at = CASE WHEN $3::text = 'sent' THEN now() ELSE delivered_at END, updated_at = now()
        WHERE id = $1 AND lease_token = $2 AND delivery_status = 'pending'
    RETURNING id)
     INSERT INTO delivery_attempts (delivery_id, attempt, trigger, started_at, duration_ms, response_status,
                                    response_excerpt, error_code, error_message, next_attempt_at)
     SELECT id, $4, $7, $8, $9, $10, $11, $12, $13, $5::timestamptz FROM settled`,
    [
      delivery.id,
      delivery.lease_token,
      outcome.status,
      attempt.number,
      nextAttemptAt,
      lastError,
      delivery.manual ? 'manual' : 'scheduled',
      attempt.startedAt,
      Math.round(result.durationMs),
      result.statusCode,
      result.responseExcerpt,
      result.errorCode,
      result.errorMessage,
    ],
  );
  return rowCount === 1;
}

/**
 * Milliseconds (by the database clock) until the earliest pending delivery can be claimed — its
 * next attempt, or the end of the lease it is under; 0 if one is due now, null if none is pending.
 * Two index lookups rather than one scan of every pending row, so it stays cheap under a backlog.
 */
export async function msUntilNextDue(db: Queryable): Promise<number | null> {
  const { rows } = await db.query<{ ms: number | null }>(
    `SELECT GREATEST(0, EXTRACT(EPOCH FROM LEAST(
              (SELECT next_attempt_at FROM deliveries
                WHERE delivery_status = 'pending' AND (locked_until IS NULL OR locked_until < now())
                ORDER BY next_attempt_at LIMIT 1),
              (SELECT min(locked_until) FROM deliveries
                WHERE delivery_status = 'pending' AND locked_until IS NOT NULL)) - now()) * 1000)::float8 AS ms`,
  );
  return rows[0]?.ms ?? null;
}
