// Endpoint health in Postgres, so every dispatcher sees one breaker per endpoint: each finished
// attempt of an endpoint delivery moves its streak, breaker and minute counters (breaker-policy.ts
// decides, this module writes), and may disable it — with the `endpoint.disabled` event and a live
// feed notice in the same transaction.
import type pg from 'pg';
import { UPLOAD_EVENTS_CHANNEL } from '../uploads/channels.ts';
import { nextHealth, type AttemptVerdict, type BreakerOptions, type EndpointHealth, type HealthTransition } from './breaker-policy.ts';
import type { AttemptResult } from './types.ts';

/** The `kind` of the live-feed notice sent on the upload events channel when an endpoint is disabled. */
export const ENDPOINT_DISABLED_NOTICE = 'endpoint.disabled';

export interface EndpointAttempt {
  endpointId: string;
  /** the claim's lease token: equal to the endpoint's probe token when this attempt was the probe */
  leaseToken: string;
  verdict: AttemptVerdict;
  /** the dispatcher's clock (injected in tests), ms */
  nowMs: number;
}

/** How an attempt's result counts for its endpoint. */
export function verdictOf(result: AttemptResult): AttemptVerdict {
  if (result.ok) return 'success';
  return result.errorCode === 'aborted' ? 'aborted' : 'failure';
}

interface HealthRow {
  tenant_id: string;
  url: string;
  enabled: boolean;
  breaker_state: 'closed' | 'open';
  consecutive_failures: number;
  failing_since: Date | null;
  last_success_at: Date | null;
  probes_failed: number;
  next_probe_at: Date | null;
  was_probe: boolean;
}

/**
 * Applies one finished attempt to its endpoint, in one short transaction under the endpoint's row
 * lock (several dispatchers finishing attempts of one endpoint apply them one after the other).
 * Returns the transition, or null when the endpoint is gone. Throws on database errors: the attempt
 * itself is already recorded, so a lost health update costs one step of the streak, nothing more.
 */
export async function recordEndpointAttempt(pool: pg.Pool, attempt: EndpointAttempt, opts: BreakerOptions): Promise<HealthTransition | null> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const { rows } = await client.query<HealthRow>(
      `SELECT tenant_id, url, enabled, breaker_state, consecutive_failures, failing_since, last_success_at, probes_failed,
              next_probe_at, probe_lease_token IS NOT DISTINCT FROM $2::uuid AS was_probe
         FROM endpoints WHERE id = $1 FOR UPDATE`,
      [attempt.endpointId, attempt.leaseToken],
    );
    const row = rows[0];
    if (!row) {
      await client.query('COMMIT');
      return null;
    }
    const prev: EndpointHealth = {
      enabled: row.enabled,
      breakerState: row.breaker_state,
      consecutiveFailures: row.consecutive_failures,
      failingSince: row.failing_since,
      lastSuccessAt: row.last_success_at,
      probesFailed: row.probes_failed,
      nextProbeAt: row.next_probe_at,
    };
    const change = nextHealth(prev, attempt.verdict, row.was_probe, attempt.nowMs, opts);
    const now = new Date(attempt.nowMs);
    const { next } = change;
    await client.query(
      `UPDATE endpoints
          SET breaker_state = $2, consecutive_failures = $3, failing_since = $4, last_success_at = $5, probes_failed = $6,
              next_probe_at = $7,
              probe_lease_token = CASE WHEN $8 THEN NULL ELSE probe_lease_token END,
              probe_delivery_id = CASE WHEN $8 THEN NULL ELSE probe_delivery_id END,
              probe_until = CASE WHEN $8 THEN NULL ELSE probe_until END,
              enabled = $9,
              disabled_reason = CASE WHEN $10 THEN $11 ELSE disabled_reason END,
              disabled_at = CASE WHEN $10 THEN $12::timestamptz ELSE disabled_at END,
              updated_at = CASE WHEN $10 THEN now() ELSE updated_at END
        WHERE id = $1`,
      [
        attempt.endpointId, next.breakerState, next.consecutiveFailures, next.failingSince, next.lastSuccessAt, next.probesFailed,
        next.nextProbeAt, row.was_probe || change.closed, next.enabled, change.disable, disabledReason(opts), now,
      ],
    );
    // Minute counters behind failureRateLastHour; rows past two hours go in the same breath.
    await client.query(
      `WITH bumped AS (
         INSERT INTO endpoint_attempt_minutes (endpoint_id, minute, attempts, failures)
         VALUES ($1, date_trunc('minute', $2::timestamptz), 1, $3)
         ON CONFLICT (endpoint_id, minute) DO UPDATE
           SET attempts = endpoint_attempt_minutes.attempts + 1, failures = endpoint_attempt_minutes.failures + $3)
       DELETE FROM endpoint_attempt_minutes WHERE endpoint_id = $1 AND minute < $2::timestamptz - interval '2 hours'`,
      [attempt.endpointId, now, attempt.verdict === 'success' ? 0 : 1],
    );
    if (change.closed) {
      // The deliveries the breaker held flow now, in order of seq (the claim orders equal due times by seq).
      await client.query(
        `UPDATE deliveries SET next_attempt_at = now(), updated_at = now()
          WHERE endpoint_id = $1 AND delivery_status = 'pending'`,
        [attempt.endpointId],
      );
    }
    if (change.disable) await emitEndpointDisabled(client, attempt.endpointId, row, next, disabledReason(opts), now);
    await client.query('COMMIT');
    return change;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

function disabledReason(opts: BreakerOptions): string {
  return `every attempt failed for ${Math.round(opts.disableAfterMs / 3_600_000)} h`;
}

/**
 * The operational event, written like any other (expanded to the tenant's enabled endpoints that
 * subscribe to it — the disabled one no longer is), and a notice for the tenant's live feed.
 */
async function emitEndpointDisabled(
  client: pg.PoolClient,
  endpointId: string,
  row: HealthRow,
  next: EndpointHealth,
  reason: string,
  now: Date,
): Promise<void> {
  const payload = {
    type: 'endpoint.disabled',
    endpointId,
    url: row.url,
    reason,
    failingSince: (next.failingSince ?? now).toISOString(),
    consecutiveFailures: next.consecutiveFailures,
    timestamp: now.toISOString(),
  };
  await client.query(
    `INSERT INTO outbox_events (tenant_id, event_type, payload) VALUES ($1, 'endpoint.disabled', $2)`,
    [row.tenant_id, payload],
  );
  await client.query('SELECT pg_notify($1, $2)', [
    UPLOAD_EVENTS_CHANNEL,
    JSON.stringify({ kind: ENDPOINT_DISABLED_NOTICE, tenantId: row.tenant_id, data: payload }),
  ]);
}
