// Recovery of an endpoint after an outage: POST /endpoints/:id/recover {since, until} starts a
// long-running operation (Google AIP-151) that queues again every failed delivery of the endpoint
// whose event happened in the window, and creates the deliveries it never got (it did not exist
// yet, or was disabled when the event was expanded). Svix's "recover failed messages since".
//
// Where it runs: a graphile-worker task in the worker role, not in the dispatcher. The request writes
// the operation and its job in one transaction, so an accepted recovery is never lost (a crashed
// worker's job is taken over by the lease supervisor, a failed one is retried by graphile-worker);
// the dispatcher has no durable queue of its own for one-off work, and its claim loop stays about
// sending. The deliveries the job queues wake the dispatchers like any other (deliveries_notify).
import type { Task } from 'graphile-worker';
import type pg from 'pg';
import type { Logger } from '../logger.ts';
import { OUTCOME_EVENT_TYPES } from './event-types.ts';

export const RECOVER_ENDPOINT_TASK = 'recover-endpoint';

type Queryable = Pick<pg.ClientBase, 'query'>;

export interface OperationRow {
  id: string;
  tenant_id: string;
  kind: 'endpoint.recover';
  endpoint_id: string;
  since: Date;
  until: Date;
  done: boolean;
  queued: number | null;
  error_code: string | null;
  error_message: string | null;
  created_at: Date;
  finished_at: Date | null;
}

const OPERATION_COLUMNS = 'id, tenant_id, kind, endpoint_id, since, until, done, queued, error_code, error_message, created_at, finished_at';

/**
 * Writes the operation and queues its job in one transaction (`trx` is in one). The endpoint must
 * be the tenant's: the caller checked it under the same transaction. `until` > `since` (the table
 * checks it too).
 */
export async function startRecovery(
  trx: Queryable,
  tenantId: string,
  endpointId: string,
  window: { since: Date; until: Date },
): Promise<OperationRow> {
  const { rows } = await trx.query<OperationRow>(
    `INSERT INTO operations (tenant_id, kind, endpoint_id, since, until) VALUES ($1, 'endpoint.recover', $2, $3, $4)
     RETURNING ${OPERATION_COLUMNS}`,
    [tenantId, endpointId, window.since, window.until],
  );
  const operation = rows[0]!;
  // job_key: one job per operation whatever happens to this transaction's retries.
  await trx.query(
    `SELECT graphile_worker.add_job($1, json_build_object('operationId', $2::text), max_attempts => 10, job_key => $3)`,
    [RECOVER_ENDPOINT_TASK, operation.id, `operation:${operation.id}`],
  );
  return operation;
}

/** The tenant's operation; undefined for an unknown id or another tenant's. */
export async function findOperation(db: Queryable, tenantId: string, id: string): Promise<OperationRow | undefined> {
  const { rows } = await db.query<OperationRow>(`SELECT ${OPERATION_COLUMNS} FROM operations WHERE tenant_id = $1 AND id = $2`, [tenantId, id]);
  return rows[0];
}

/**
 * An event of the window that a newer outcome of the same upload made stale (the rule of
 * superseding, expand.ts): recovering it would send e.g. `failed` after `completed` was delivered.
 */
const NOT_SUPERSEDED = `NOT EXISTS (
  SELECT 1 FROM outbox_events newer
   WHERE ev.upload_id IS NOT NULL AND newer.upload_id = ev.upload_id AND newer.seq > ev.seq
     AND newer.event_type = ANY($2::text[]))`;

/**
 * Runs the operation: in one transaction, under the operation's row lock, (1) every `failed`
 * delivery of the endpoint whose event happened in [since, until) goes back to `pending`, due now,
 * to the endpoint's current url and channel, with a new retry run (as POST /deliveries/:id/redeliver: same id, so the same webhook-id, history
 * kept); (2) each event of the tenant in the window that the endpoint subscribes to and has no
 * delivery for gets one (unique per event and target: expansion or a second recovery writing the
 * same one writes nothing); events made stale by a newer outcome of their upload are left out of
 * both. Then the operation is marked done with the count. A done operation is left as it is, so a
 * retried job queues nothing twice. An endpoint deleted meanwhile ends it with error `not_found`.
 * Deliveries to a disabled endpoint are queued and wait until it is enabled. Returns the operation
 * as it ends; throws when the database fails (graphile-worker retries the job).
 */
export async function runRecovery(pool: pg.Pool, operationId: string): Promise<OperationRow | undefined> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const { rows: [op] } = await client.query<OperationRow>(`SELECT ${OPERATION_COLUMNS} FROM operations WHERE id = $1 FOR UPDATE`, [operationId]);
    if (!op || op.done) {
      await client.query('COMMIT');
      return op;
    }
    // The endpoint's row lock: a concurrent PATCH (url, channel) or DELETE waits for this, so the
    // created deliveries carry its current target and none is created for a deleted endpoint.
    const { rows: [endpoint] } = await client.query<{ id: string }>(
      `SELECT id FROM endpoints WHERE id = $1 AND tenant_id = $2 FOR UPDATE`,
      [op.endpoint_id, op.tenant_id],
    );
    let finished: OperationRow;
    if (!endpoint) {
      finished = await finish(client, op.id, null, 'not_found', 'the endpoint was deleted before its recovery ran');
    } else {
      const { rows: [counts] } = await client.query<{ requeued: number; created: number }>(
        `WITH requeued AS (
           UPDATE deliveries d
              SET delivery_status = 'pending', next_attempt_at = now(), redeliver_requested = true,
                  run_first_attempt = d.attempts + 1, locked_until = NULL, lease_token = NULL, updated_at = now(),
                  -- where the endpoint points now: its url may have changed during the outage
                  target = e.url, channel = e.channel
             FROM outbox_events ev, endpoints e
            WHERE ev.id = d.event_id AND e.id = d.endpoint_id AND d.endpoint_id = $1 AND d.delivery_status = 'failed'
              AND ev.created_at >= $3 AND ev.created_at < $4 AND ${NOT_SUPERSEDED}
           RETURNING 1),
         created AS (
           INSERT INTO deliveries (event_id, target_key, endpoint_id, tenant_id, upload_id, upload_attempt, event, channel,
                                   target, payload, delivery_status, created_at, updated_at, next_attempt_at)
           SELECT ev.id, 'endpoint:' || e.id, e.id, ev.tenant_id, ev.upload_id, ev.upload_attempt, ev.event_type,
                  e.channel, e.url, ev.payload, 'pending', ev.created_at, now(), now()
             FROM endpoints e JOIN outbox_events ev ON ev.tenant_id = e.tenant_id
            WHERE e.id = $1 AND ev.created_at >= $3 AND ev.created_at < $4
              AND (cardinality(e.event_types) = 0 OR ev.event_type = ANY(e.event_types))
              -- its own endpoint.disabled notice goes to the tenant's other endpoints only
              AND NOT (ev.event_type = 'endpoint.disabled' AND ev.payload->>'endpointId' = e.id::text)
              AND ${NOT_SUPERSEDED}
            ORDER BY ev.seq -- deliveries of one upload keep their events' order (claiming follows seq)
           ON CONFLICT ON CONSTRAINT deliveries_once DO NOTHING
           RETURNING 1)
         SELECT (SELECT count(*) FROM requeued)::int AS requeued, (SELECT count(*) FROM created)::int AS created`,
        [op.endpoint_id, OUTCOME_EVENT_TYPES, op.since, op.until],
      );
      finished = await finish(client, op.id, counts!.requeued + counts!.created, null, null);
    }
    await client.query('COMMIT');
    return finished;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

/**
 * Retention: done operations that finished more than `days` ago, at most `limit` per call (their
 * status resource is then a 404, as the deliveries they queued are purged by then too). An operation
 * not done yet is kept whatever its age: its job is still to run.
 */
export async function deleteExpiredOperations(db: Queryable, days: number, limit: number): Promise<number> {
  const { rowCount } = await db.query(
    `DELETE FROM operations WHERE id IN (
       SELECT id FROM operations WHERE done AND finished_at < now() - make_interval(days => $1) LIMIT $2)`,
    [days, limit],
  );
  return rowCount ?? 0;
}

async function finish(db: Queryable, id: string, queued: number | null, code: string | null, message: string | null): Promise<OperationRow> {
  const { rows } = await db.query<OperationRow>(
    `UPDATE operations SET done = true, queued = $2, error_code = $3, error_message = $4, finished_at = now()
      WHERE id = $1 RETURNING ${OPERATION_COLUMNS}`,
    [id, queued, code, message],
  );
  return rows[0]!;
}

/** The graphile-worker task: payload `{ operationId }`. */
export function createRecoverTask(deps: { pool: pg.Pool; logger: Pick<Logger, 'info' | 'warn'> }): Task {
  return async (payload) => {
    const { operationId } = (payload ?? {}) as { operationId?: unknown };
    if (typeof operationId !== 'string') {
      deps.logger.warn({ payload }, 'recover-endpoint job without an operationId: dropped');
      return;
    }
    const op = await runRecovery(deps.pool, operationId);
    deps.logger.info({ operationId, endpointId: op?.endpoint_id, queued: op?.queued, error: op?.error_code }, 'endpoint recovery finished');
  };
}
