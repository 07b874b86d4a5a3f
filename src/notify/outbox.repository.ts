// The dispatcher's SQL: claim due deliveries under a fenced lease — closing an attempt a dead claim
// left unfinished and starting this claim's attempt — finish the attempt with its outcome, and tell
// when the next delivery falls due. Every function is one statement, so none of them holds a
// transaction open across an HTTP call, and each delivery costs one claim share plus one finish.
import type pg from 'pg';
import { OUTCOME_EVENT_TYPES } from './event-types.ts';
import type { Outcome } from './retry-policy.ts';
import type { AttemptResult } from './types.ts';
import { CHARGE_RATE, CLAIM_LOCK_KEY, fairDueCtes, NEXT_RATE_SLOT } from './isolation.ts';

/** In-flight deliveries per endpoint across all dispatchers when the caller names no cap. */
export const DEFAULT_MAX_IN_FLIGHT = 10;

type Queryable = Pick<pg.Pool, 'query'>;

/**
 * A delivery to an endpoint waits while that endpoint is disabled (kept, not dropped: re-enabling
 * resumes it) or its circuit breaker is open (then only the probe goes: claimProbes). A subquery,
 * not a join, so the claim's FOR UPDATE locks no endpoint row.
 */
const ENDPOINT_FLOWING = `(deliveries.endpoint_id IS NULL
  OR EXISTS (SELECT 1 FROM endpoints e WHERE e.id = deliveries.endpoint_id AND e.enabled AND e.breaker_state = 'closed'))`;

/**
 * ENDPOINT_FLOWING for a claim that looks at every due row (claimDue ranks them all): the held
 * endpoints are read once into a hashed set instead of one lookup per row, as the rows of open or
 * disabled endpoints pile up while they wait. Equivalent, as a delivery's endpoint_id is either NULL
 * or an existing endpoint (ON DELETE SET NULL).
 */
const ENDPOINT_FLOWING_HASHED = `(deliveries.endpoint_id IS NULL
  OR deliveries.endpoint_id NOT IN (SELECT e.id FROM endpoints e WHERE NOT e.enabled OR e.breaker_state <> 'closed'))`;

/**
 * Per-upload order: a delivery waits while an older one of the same upload to the same target is
 * pending, so a receiver gets an upload's notices in the order they happened (and a newer outcome
 * supersedes the older pending ones instead of waiting behind them: expand.ts, finishAttempt).
 */
const NO_OLDER_PENDING = `NOT EXISTS (SELECT 1 FROM deliveries o
  WHERE o.upload_id = deliveries.upload_id AND o.target_key = deliveries.target_key
    AND o.delivery_status = 'pending' AND o.seq < deliveries.seq)`;

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
  /** the endpoint it goes to; null for a callbackUrl delivery */
  endpoint_id: string | null;
  /** the attempt is the probe of an open breaker: charged to no retry budget */
  probe: boolean;
  /** number of the unfinished attempt this claim closed as `interrupted`, if there was one */
  interrupted_attempt: number | null;
  /**
   * true: that interrupted attempt was the last of the retry budget, so the claim settled the
   * delivery `failed` instead of leasing it and started no attempt: nothing is to be sent
   */
  budget_spent: boolean;
}

/**
 * Claims up to `limit` due rows, leases each for `leaseMs` under a fresh token, and records each
 * claim's attempt as started at `startedAt` — a row with no outcome yet, the attempt counter
 * advanced — before anything is sent, so a request that leaves a dispatcher always has its row, even
 * if the dispatcher dies.
 *
 * Receivers are isolated (isolation.ts): rows are taken round-robin across receivers (endpoints,
 * callbackUrl hosts), none beyond `maxInFlight` leased deliveries per endpoint across all
 * dispatchers, nor beyond an endpoint's rate_limit_per_second. Claims are serialized by a transaction-level advisory lock so each counts
 * the leases of the one before: given a pool, claimDue runs its own transaction; given a client, it
 * must be inside one (the lock is held to its end).
 *
 * A dispatcher that dies mid-send leaves a lease that lapses and an attempt with no outcome; the
 * claim that takes the row next closes that attempt as `interrupted` (the receiver may have it) and
 * the row is sent again with the same id (at-least-once). The interrupted attempt counts against the
 * retry budget (`maxRetries` retries after the first attempt of the current run): when it was the
 * last, the claim settles the delivery `failed` instead and starts nothing (`budget_spent`).
 */
export async function claimDue(
  db: pg.Pool | pg.PoolClient,
  limit: number,
  leaseMs: number,
  maxRetries: number,
  startedAt: Date,
  maxInFlight = DEFAULT_MAX_IN_FLIGHT,
): Promise<ClaimedDelivery[]> {
  const ready = `delivery_status = 'pending' AND next_attempt_at <= now()
          AND (locked_until IS NULL OR locked_until < now()) AND ${ENDPOINT_FLOWING_HASHED} AND ${NO_OLDER_PENDING}`;
  const sql = claimSql(fairDueCtes(ready), false);
  const params = [limit, leaseMs, maxRetries, INTERRUPTED_MESSAGE, startedAt, maxInFlight];
  if ('release' in db) {
    await db.query('SELECT pg_advisory_xact_lock($1::bigint)', [CLAIM_LOCK_KEY]);
    return (await db.query<ClaimedDelivery>(sql, params)).rows;
  }
  const client = await db.connect();
  try {
    // One round trip for BEGIN and the lock; the claim's snapshot is then taken after the lock.
    await client.query(`BEGIN; SELECT pg_advisory_xact_lock(${CLAIM_LOCK_KEY})`);
    const { rows } = await client.query<ClaimedDelivery>(sql, params);
    await client.query('COMMIT');
    return rows;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

/**
 * Claims the probe of up to `limit` open breakers whose next probe is due by `now` (the dispatcher's
 * clock): for each, its oldest pending delivery (by seq, whatever its own due time), claimed as
 * claimDue does, its attempt recorded with trigger `probe`. The endpoint row is locked (SKIP LOCKED)
 * and carries the probe's lease (`probe_until`, re-checked under the lock), so across all
 * dispatchers an endpoint has at most one probe in flight.
 */
export async function claimProbes(
  db: Queryable,
  limit: number,
  leaseMs: number,
  maxRetries: number,
  now: Date,
): Promise<ClaimedDelivery[]> {
  const due = `open_ep AS (
       SELECT e.id FROM endpoints e
        WHERE e.breaker_state = 'open' AND e.enabled AND e.next_probe_at <= $5
          AND (e.probe_until IS NULL OR e.probe_until < now())
        ORDER BY e.next_probe_at
        LIMIT $1
        FOR UPDATE SKIP LOCKED),
     due AS (
       SELECT d.id, d.attempts, d.run_first_attempt, d.redeliver_requested FROM open_ep
        CROSS JOIN LATERAL (
          SELECT id, attempts, run_first_attempt, redeliver_requested FROM deliveries
           WHERE endpoint_id = open_ep.id AND delivery_status = 'pending'
             AND (locked_until IS NULL OR locked_until < now()) AND ${NO_OLDER_PENDING}
           ORDER BY seq LIMIT 1
           FOR UPDATE SKIP LOCKED) d)`;
  const { rows } = await db.query<ClaimedDelivery>(claimSql(due, true), [limit, leaseMs, maxRetries, INTERRUPTED_MESSAGE, now]);
  return rows;
}

/**
 * The claim proper, after a `due` CTE (id, attempts, run_first_attempt, redeliver_requested) has
 * picked and locked the rows. Parameters: $1 limit, $2 leaseMs, $3 maxRetries, $4 the interrupted
 * message, $5 the start time of the attempts. A probe claim also marks each endpoint's probe lease;
 * any other charges each rate-limited endpoint for the deliveries claimed.
 */
function claimSql(due: string, probe: boolean): string {
  return `WITH ${due},
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
              due.redeliver_requested AS manual, d.lease_token, d.endpoint_id, ${probe} AS probe,
              CASE WHEN d.endpoint_id IS NULL
                   THEN array_remove(ARRAY[t.webhook_secret,
                          CASE WHEN t.previous_secret_expires_at > now() THEN t.previous_webhook_secret END], NULL)
                   ELSE (SELECT array_remove(ARRAY[e.secret,
                           CASE WHEN e.previous_secret_expires_at > now() THEN e.previous_secret END], NULL)
                           FROM endpoints e WHERE e.id = d.endpoint_id) END AS secrets,
              closed.attempt AS interrupted_attempt, COALESCE(closed.budget_spent, false) AS budget_spent),
     started AS (
       INSERT INTO delivery_attempts (delivery_id, attempt, trigger, started_at)
       SELECT id, attempt, CASE WHEN ${probe} THEN 'probe' WHEN manual THEN 'manual' ELSE 'scheduled' END, $5::timestamptz
         FROM claimed WHERE NOT budget_spent),
     ${probe ? `probing AS (
       UPDATE endpoints e
          SET probe_delivery_id = claimed.id, probe_lease_token = claimed.lease_token,
              probe_until = now() + make_interval(secs => $2::double precision / 1000)
         FROM claimed WHERE e.id = claimed.endpoint_id AND NOT claimed.budget_spent)` : CHARGE_RATE}
     SELECT * FROM claimed`;
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
 *
 * A delivery that would be retried while a newer outcome of its upload to the same target exists
 * is settled `skipped` instead, the reason in last_error (superseded: the receiver must not get an
 * older outcome after a newer one). A probe's failure is charged to no retry budget: the next
 * attempt opens a new run (run_first_attempt), as a manual redelivery does.
 */
export async function finishAttempt(db: Queryable, delivery: ClaimedDelivery, attempt: AttemptRecord): Promise<boolean> {
  const { result, outcome } = attempt;
  const nextAttemptAt = outcome.status === 'pending' ? outcome.nextAttemptAt : null;
  const lastError = result.ok ? null : [result.errorCode, result.errorMessage].filter(Boolean).join(': ');
  const { rowCount } = await db.query(
    `WITH newer AS (
       SELECT n.event, n.upload_attempt FROM deliveries o
         JOIN deliveries n ON n.upload_id = o.upload_id AND n.target_key = o.target_key AND n.seq > o.seq
        WHERE o.id = $1 AND $3::text = 'pending' AND n.event = ANY($14::text[])
        ORDER BY n.seq DESC LIMIT 1),
     settled AS (
       UPDATE deliveries
          SET delivery_status = CASE WHEN EXISTS (SELECT 1 FROM newer) THEN 'skipped' ELSE $3::text END,
              next_attempt_at = COALESCE($5::timestamptz, next_attempt_at),
              locked_until = NULL, lease_token = NULL,
              last_error = COALESCE((SELECT 'superseded: a newer ' || event || ' (processing attempt ' || upload_attempt
                                            || ') of this upload was queued for this target' FROM newer), $6),
              run_first_attempt = CASE WHEN $13 THEN attempts + 1 ELSE run_first_attempt END,
              delivered_at = CASE WHEN $3::text = 'sent' THEN now() ELSE delivered_at END, updated_at = now()
        WHERE id = $1 AND lease_token = $2 AND delivery_status = 'pending'
    RETURNING id, delivery_status)
     UPDATE delivery_attempts a
        SET finished_at = $7, duration_ms = $8, response_status = $9, response_excerpt = $10,
            error_code = $11, error_message = $12,
            next_attempt_at = CASE WHEN settled.delivery_status = 'pending' THEN $5::timestamptz END
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
      delivery.probe && outcome.status === 'pending',
      OUTCOME_EVENT_TYPES,
    ],
  );
  return rowCount === 1;
}

/**
 * Milliseconds (by the database clock) until the earliest pending delivery can be claimed — its
 * next attempt, the end of the lease it is under, the next probe of an open breaker, or a
 * rate-limited endpoint's next slot — null if none is pending. Asked after a claim that took fewer
 * rows than it could, so rows due now are ignored: they are held by an endpoint's in-flight cap
 * (a finishing attempt wakes its dispatcher), by per-upload order, or were committed since (their
 * NOTIFY wakes us). Index lookups rather than one scan of every pending row, so it stays cheap
 * under a backlog.
 */
export async function msUntilNextDue(db: Queryable): Promise<number | null> {
  const { rows } = await db.query<{ ms: number | null }>(
    `SELECT GREATEST(0, EXTRACT(EPOCH FROM LEAST(
              (SELECT next_attempt_at FROM deliveries
                WHERE delivery_status = 'pending' AND next_attempt_at > now()
                  AND (locked_until IS NULL OR locked_until < now()) AND ${ENDPOINT_FLOWING}
                ORDER BY next_attempt_at LIMIT 1),
              ${NEXT_RATE_SLOT},
              (SELECT min(locked_until) FROM deliveries
                WHERE delivery_status = 'pending' AND locked_until IS NOT NULL),
              -- the next probe of an open breaker (or the end of a probe's lease)
              (SELECT min(GREATEST(next_probe_at, probe_until)) FROM endpoints
                WHERE breaker_state = 'open' AND enabled)) - now()) * 1000)::float8 AS ms`,
  );
  return rows[0]?.ms ?? null;
}
