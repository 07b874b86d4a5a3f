// SQL for the outbox: claim due deliveries under a lease, record each attempt with its outcome.
import type pg from 'pg';
import type { Outcome } from './retry-policy.ts';
import type { AttemptResult } from './types.ts';

export interface ClaimedDelivery {
  id: string;
  tenant_id: string;
  channel: string;
  target: string;
  payload: Record<string, unknown>;
  attempts: number;
  manual: boolean;
  secrets: string[];
}

/**
 * Claims up to `limit` due rows with FOR UPDATE SKIP LOCKED and gives each a lease, in one short
 * statement: no transaction stays open across the HTTP call. A dispatcher that dies mid-send
 * leaves a lease that lapses, and the row is claimed again (at-least-once).
 */
export async function claimDue(pool: pg.Pool, limit: number, leaseMs: number): Promise<ClaimedDelivery[]> {
  const { rows } = await pool.query<ClaimedDelivery>(
    `WITH due AS (
       SELECT id FROM deliveries
        WHERE delivery_status = 'pending' AND next_attempt_at <= now()
          AND (locked_until IS NULL OR locked_until < now())
        ORDER BY next_attempt_at
        LIMIT $1
        FOR UPDATE SKIP LOCKED)
     UPDATE deliveries d
        SET locked_until = now() + make_interval(secs => $2::double precision / 1000)
       FROM due, tenants t
      WHERE d.id = due.id AND t.id = d.tenant_id
  RETURNING d.id, d.tenant_id, d.channel, d.target, d.payload, d.attempts,
            d.redeliver_requested AS manual,
            array_remove(ARRAY[t.webhook_secret,
              CASE WHEN t.previous_secret_expires_at > now() THEN t.previous_webhook_secret END], NULL) AS secrets`,
    [limit, leaseMs],
  );
  return rows;
}

/** The attempt's audit row and the delivery's new state, in one transaction. */
export async function recordAttempt(
  pool: pg.Pool,
  delivery: ClaimedDelivery,
  attempt: { number: number; startedAt: Date; result: AttemptResult; outcome: Outcome },
): Promise<void> {
  const { result, outcome } = attempt;
  const nextAttemptAt = outcome.status === 'pending' ? outcome.nextAttemptAt : null;
  const lastError = result.ok ? null : [result.errorCode, result.errorMessage].filter(Boolean).join(': ');
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query(
      `INSERT INTO delivery_attempts (delivery_id, attempt, trigger, started_at, duration_ms, response_status,
                                      response_excerpt, error_code, error_message, next_attempt_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
      [
        delivery.id,
        attempt.number,
        delivery.manual ? 'manual' : 'scheduled',
        attempt.startedAt,
        Math.round(result.durationMs),
        result.statusCode,
        result.responseExcerpt,
        result.errorCode,
        result.errorMessage,
        nextAttemptAt,
      ],
    );
    await client.query(
      `UPDATE deliveries
          SET delivery_status = $2, attempts = $3, next_attempt_at = COALESCE($4, next_attempt_at),
              locked_until = NULL, last_error = $5, redeliver_requested = false, updated_at = now(),
              delivered_at = CASE WHEN $2 = 'sent' THEN now() ELSE delivered_at END
        WHERE id = $1`,
      [delivery.id, outcome.status, attempt.number, nextAttemptAt, lastError],
    );
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

/** Gives back leases of rows this dispatcher claimed but will not send (graceful shutdown). */
export async function releaseClaims(pool: pg.Pool, ids: readonly string[]): Promise<void> {
  if (ids.length === 0) return;
  await pool.query('UPDATE deliveries SET locked_until = NULL WHERE id = ANY($1::uuid[])', [ids]);
}
