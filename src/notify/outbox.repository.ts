// The dispatcher's SQL: claim due deliveries under a fenced lease — closing an attempt a dead claim
// left unfinished and starting this claim's attempt — finish the attempt with its outcome, and tell
// when the next delivery falls due. Every function is one statement, so none of them holds a
// transaction open across an HTTP call, and each delivery costs one claim share plus one finish.
import type pg from 'pg';
import type { Outcome } from './retry-policy.ts';
import type { AttemptResult } from './types.ts';

type Queryable = Pick<pg.Pool, 'query'>;

/**
 * A delivery to an endpoint waits while that endpoint is disabled (kept, not dropped: re-enabling
 * resumes it). A subquery, not a join, so the claim's FOR UPDATE locks no endpoint row.
 */
const ENDPOINT_ENABLED = `(deliveries.endpoint_id IS NULL
  OR EXISTS (SELECT 1 FROM endpoints e WHERE e.id = deliveries.endpoint_id AND e.enabled))`;

/** The NOTIFY channel that wakes dispatchers: an event or a due delivery committed. */
export const DUE_CHANNEL = 'deliveries_due';

/** error_message of an attempt whose outcome was never recorded. */
export const INTERRUPTED_MESSAGE =
  'the dispatcher stopped (or lost its lease) before the outcome was known; the receiver may have received it';

export interface ClaimedDelivery {
  id: string;
  tenant_id: string;
  channel: string;
  target: string;
  payload: Record<string, unknown>;
  /** this claim's attempt number; its row is already recorded as started (no outcome yet) */
  attempt: number;
  run_first_attempt: number;
  /** the attempt is a manual redelivery */
  manual: boolean;
  /** proves this claim still owns the delivery when the attempt is finished */
  lease_token: string;
  /**
   * signing secrets at claim time, the current one then the previous one during rotation: the
   * endpoint's for an endpoint delivery, the tenant's for a callbackUrl delivery
   */
  secrets: string[];
  /** number of the unfinished attempt this claim closed as `interrupted`, if there was one */
  interrupted_attempt: number | null;
  /**
   * true: that interrupted attempt was the last of the retry budget, so the claim settled the
   * delivery `failed` instead of leasing it and started no attempt: nothing is to be sent
   */
  budget_spent: boolean;
}

/**
 * Claims up to `limit` due rows (FOR UPDATE SKIP LOCKED, so concurrent dispatchers take disjoint
 * rows), leases each for `leaseMs` under a fresh token, and records each claim's attempt as started
 * at `startedAt` — a row with no outcome yet, the attempt counter advanced — before anything is
 * sent, so a request that leaves a dispatcher always has its row, even if the dispatcher dies.
 *
 * A dispatcher that dies mid-send leaves a lease that lapses and an attempt with no outcome; the
 * claim that takes the row next closes that attempt as `interrupted` (the receiver may have it) and
 * the row is sent again with the same id (at-least-once). The interrupted attempt counts against the
 * retry budget (`maxRetries` retries after the first attempt of the current run): when it was the
 * last, the claim settles the delivery `failed` instead and starts nothing (`budget_spent`).
 */
export async function claimDue(
  db: Queryable,
  limit: number,
  leaseMs: number,
  maxRetries: number,
  startedAt: Date,
): Promise<ClaimedDelivery[]> {
  const { rows } = await db.query<ClaimedDelivery>(
    `WITH due AS (
       SELECT id, attempts, run_first_attempt, redeliver_requested FROM deliveries
        WHERE delivery_status = 'pending' AND next_attempt_at <= now()
          AND (locked_until IS NULL OR locked_until < now()) AND ${ENDPOINT_ENABLED}
        ORDER BY next_attempt_at
        LIMIT $1
        FOR UPDATE SKIP LOCKED),
     closed AS (
       UPDATE delivery_attempts a
          SET finished_at = now(), error_code = 'interrupted', error_message = $4::text,
              next_attempt_at = CASE WHEN a.attempt >= due.run_first_attempt
                                      AND a.attempt - due.run_first_attempt + 1 > $3 THEN NULL ELSE now() END
         FROM due
        WHERE a.delivery_id = due.id AND a.finished_at IS NULL
    RETURNING a.delivery_id, a.attempt, a.next_attempt_at IS NULL AS budget_spent),
     claimed AS (
       UPDATE deliveries d
          SET locked_until = CASE WHEN closed.budget_spent THEN NULL
                                  ELSE now() + make_interval(secs => $2::double precision / 1000) END,
              lease_token = CASE WHEN closed.budget_spent THEN NULL ELSE gen_random_uuid() END,
              attempts = CASE WHEN closed.budget_spent THEN d.attempts ELSE d.attempts + 1 END,
              redeliver_requested = CASE WHEN closed.budget_spent THEN d.redeliver_requested ELSE false END,
              delivery_status = CASE WHEN closed.budget_spent THEN 'failed' ELSE d.delivery_status END,
              last_error = CASE WHEN closed.budget_spent THEN 'interrupted: ' || $4::text ELSE d.last_error END,
              updated_at = now()
         FROM due LEFT JOIN closed ON closed.delivery_id = due.id, tenants t
        WHERE d.id = due.id AND t.id = d.tenant_id
    RETURNING d.id, d.tenant_id, d.channel, d.target, d.payload, d.attempts AS attempt, d.run_first_attempt,
              due.redeliver_requested AS manual, d.lease_token,
              CASE WHEN d.endpoint_id IS NULL
                   THEN array_remove(ARRAY[t.webhook_secret,
                          CASE WHEN t.previous_secret_expires_at > now() THEN t.previous_webhook_secret END], NULL)
                   ELSE (SELECT array_remove(ARRAY[e.secret,
                           CASE WHEN e.previous_secret_expires_at > now() THEN e.previous_secret END], NULL)
                           FROM endpoints e WHERE e.id = d.endpoint_id) END AS secrets,
              closed.attempt AS interrupted_attempt, COALESCE(closed.budget_spent, false) AS budget_spent),
     started AS (
       INSERT INTO delivery_attempts (delivery_id, attempt, trigger, started_at)
       SELECT id, attempt, CASE WHEN manual THEN 'manual' ELSE 'scheduled' END, $5::timestamptz
         FROM claimed WHERE NOT budget_spent)
     SELECT * FROM claimed`,
    [limit, leaseMs, maxRetries, INTERRUPTED_MESSAGE, startedAt],
  );
  return rows;
}

export interface AttemptRecord {
  number: number;
  finishedAt: Date;
  result: AttemptResult;
  outcome: Outcome;
}

/**
 * The delivery's new state and the outcome of the attempt its claim started, in one statement (one
 * transaction). Both happen only while `lease_token` is still the delivery's token: false means the
 * lease was lost (it lapsed and another dispatcher claimed the row — closing this attempt as
 * `interrupted` — or it was redelivered) and nothing was written.
 */
export async function finishAttempt(db: Queryable, delivery: ClaimedDelivery, attempt: AttemptRecord): Promise<boolean> {
  const { result, outcome } = attempt;
  const nextAttemptAt = outcome.status === 'pending' ? outcome.nextAttemptAt : null;
  const lastError = result.ok ? null : [result.errorCode, result.errorMessage].filter(Boolean).join(': ');
  const { rowCount } = await db.query(
    `WITH settled AS (
       UPDATE deliveries
          SET delivery_status = $3::text, next_attempt_at = COALESCE($5::timestamptz, next_attempt_at),
              locked_until = NULL, lease_token = NULL, last_error = $6,
              delivered_at = CASE WHEN $3::text = 'sent' THEN now() ELSE delivered_at END, updated_at = now()
        WHERE id = $1 AND lease_token = $2 AND delivery_status = 'pending'
    RETURNING id)
     UPDATE delivery_attempts a
        SET finished_at = $7, duration_ms = $8, response_status = $9, response_excerpt = $10,
            error_code = $11, error_message = $12, next_attempt_at = $5::timestamptz
       FROM settled
      WHERE a.delivery_id = settled.id AND a.attempt = $4 AND a.finished_at IS NULL`,
    [
      delivery.id,
      delivery.lease_token,
      outcome.status,
      attempt.number,
      nextAttemptAt,
      lastError,
      attempt.finishedAt,
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
                WHERE delivery_status = 'pending' AND (locked_until IS NULL OR locked_until < now()) AND ${ENDPOINT_ENABLED}
                ORDER BY next_attempt_at LIMIT 1),
              (SELECT min(locked_until) FROM deliveries
                WHERE delivery_status = 'pending' AND locked_until IS NOT NULL)) - now()) * 1000)::float8 AS ms`,
  );
  return rows[0]?.ms ?? null;
}
