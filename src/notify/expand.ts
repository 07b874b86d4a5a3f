// Events → deliveries. The producer wrote one event; here each becomes one delivery per target: the
// upload's own callbackUrl (for the outcome events, as before endpoints existed) and every enabled
// endpoint of the tenant that subscribes to its type and existed when it happened.
import type pg from 'pg';
import { CALLBACK_EVENT_TYPES, OUTCOME_EVENT_TYPES } from './event-types.ts';

type Queryable = Pick<pg.Pool, 'query'>;

export interface ExpansionResult {
  /** events expanded by this call */
  events: number;
  /** deliveries it wrote (pending, or `skipped` for an outcome whose upload had no callbackUrl) */
  deliveries: number;
  /** older pending deliveries settled `skipped` because a newer outcome of their upload was queued */
  superseded: number;
}

/**
 * Expands up to `limit` unexpanded events, oldest first, in one statement (one transaction): their
 * deliveries are inserted and the events marked expanded together, so a crash leaves an event either
 * untouched (expanded again later) or with all its deliveries (already due, sent by any dispatcher).
 * Idempotent: events are taken FOR UPDATE SKIP LOCKED (concurrent callers take disjoint events) and a
 * delivery is unique per (event, target), so a second expansion of one event writes nothing.
 *
 * Targets: `callback` — the upload's callbackUrl, for upload.completed / upload.failed only (no
 * callbackUrl: a `none` row settled `skipped`, so the upload's audit is complete as before);
 * `endpoint:<id>` — each endpoint of the tenant that is enabled now, was created no later than the
 * event (a new endpoint does not receive old events), and lists the type or lists none (= all).
 *
 * Superseding: an outcome (upload.completed / upload.failed) settles the older pending, unleased
 * deliveries of its upload to the same target `skipped`, the reason in last_error.
 */
export async function expandEvents(db: Queryable, limit = 100): Promise<ExpansionResult> {
  const { rows } = await db.query<ExpansionResult>(
    `WITH ev AS (
       SELECT id, tenant_id, event_type, upload_id, upload_attempt, payload, created_at FROM outbox_events
        WHERE expanded_at IS NULL ORDER BY seq LIMIT $1
        FOR UPDATE SKIP LOCKED),
     targets AS (
       SELECT ev.id AS event_id, 'callback' AS target_key, NULL::uuid AS endpoint_id,
              CASE WHEN u.callback_url IS NULL THEN 'none' ELSE u.callback_channel END AS channel,
              u.callback_url AS target,
              CASE WHEN u.callback_url IS NULL THEN 'skipped' ELSE 'pending' END AS delivery_status
         FROM ev LEFT JOIN uploads u ON u.id = ev.upload_id
        WHERE ev.event_type = ANY($2::text[])
       UNION ALL
       SELECT ev.id, 'endpoint:' || e.id, e.id, e.channel, e.url, 'pending'
         FROM ev JOIN endpoints e
           ON e.tenant_id = ev.tenant_id AND e.enabled AND e.created_at <= ev.created_at
          AND (cardinality(e.event_types) = 0 OR ev.event_type = ANY(e.event_types))),
     inserted AS (
       INSERT INTO deliveries (event_id, target_key, endpoint_id, tenant_id, upload_id, upload_attempt, event, channel,
                               target, payload, delivery_status, created_at, updated_at, next_attempt_at)
       SELECT ev.id, t.target_key, t.endpoint_id, ev.tenant_id, ev.upload_id, ev.upload_attempt, ev.event_type,
              t.channel, t.target, ev.payload, t.delivery_status,
              -- created: when its event happened (what the delivery API shows); due: now
              ev.created_at, now(), now()
         FROM targets t JOIN ev ON ev.id = t.event_id
       ON CONFLICT ON CONSTRAINT deliveries_once DO NOTHING
       RETURNING upload_id, target_key, seq, event, upload_attempt, delivery_status),
     -- A newer outcome supersedes the older notices of its upload still pending for the same target
     -- (e.g. upload.failed of attempt 1 while the retry's upload.completed is queued). One in flight
     -- (leased) is left to finishAttempt, which skips it instead of retrying it.
     superseded AS (
       UPDATE deliveries d
          SET delivery_status = 'skipped', updated_at = now(),
              last_error = 'superseded: a newer ' || i.event || ' (processing attempt ' || i.upload_attempt
                           || ') of this upload was queued for this target'
         FROM inserted i
        WHERE i.upload_id IS NOT NULL AND i.event = ANY($3::text[]) AND i.delivery_status = 'pending'
          AND d.upload_id = i.upload_id AND d.target_key = i.target_key AND d.seq < i.seq
          AND d.delivery_status = 'pending' AND d.locked_until IS NULL
       RETURNING 1),
     marked AS (
       UPDATE outbox_events o SET expanded_at = now() FROM ev WHERE o.id = ev.id RETURNING 1)
     SELECT (SELECT count(*) FROM marked)::int AS events, (SELECT count(*) FROM inserted)::int AS deliveries,
            (SELECT count(*) FROM superseded)::int AS superseded`,
    [limit, CALLBACK_EVENT_TYPES, OUTCOME_EVENT_TYPES],
  );
  return rows[0] ?? { events: 0, deliveries: 0, superseded: 0 };
}

/** Expands until no unexpanded event is left (each call takes `batch` events); returns the totals. */
export async function expandAll(db: Queryable, batch = 100): Promise<ExpansionResult> {
  const total: ExpansionResult = { events: 0, deliveries: 0, superseded: 0 };
  for (;;) {
    const done = await expandEvents(db, batch);
    total.events += done.events;
    total.deliveries += done.deliveries;
    total.superseded += done.superseded;
    if (done.events < batch) return total;
  }
}
