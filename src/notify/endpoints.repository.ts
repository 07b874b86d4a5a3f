// A tenant's endpoints: where its events go. Every query takes the caller's tenant id, so another
// tenant's endpoint is invisible (undefined → 404). Secrets are read and rotated in secrets.repository.ts.
import { sql, type Kysely, type Selectable } from 'kysely';
import type { DB, EndpointsTable } from '../db/schema.ts';
import type { EventType } from './event-types.ts';
import { DUE_CHANNEL } from './outbox.repository.ts';
import { generateSecret } from './sign.ts';

export type EndpointRow = Pick<Selectable<EndpointsTable>, (typeof COLUMNS)[number]> & {
  /** attempts finished in the last hour (minute counters), and the share of them that failed (null: none) */
  attempts_last_hour: number;
  failure_rate_last_hour: number | null;
};

export type EndpointChannel = 'webhook' | 'slack' | 'email';

export interface EndpointInput {
  /** absolute http(s) URL, already checked against the SSRF rules by the caller; `mailto:` one address for email */
  url: string;
  description: string;
  /** empty: every event type */
  eventTypes: EventType[];
  channel: EndpointChannel;
  enabled: boolean;
  /** stored for the dispatcher's per-endpoint limit; null: unlimited */
  rateLimitPerSecond: number | null;
}

const COLUMNS = [
  'id',
  'seq',
  'tenant_id',
  'url',
  'description',
  'event_types',
  'channel',
  'enabled',
  'rate_limit_per_second',
  'created_at',
  'updated_at',
  'breaker_state',
  'consecutive_failures',
  'last_success_at',
  'failing_since',
  'next_probe_at',
  'disabled_reason',
  'disabled_at',
] as const;

/**
 * The last hour from the per-minute counters the dispatcher keeps (at most 61 rows per endpoint):
 * cheap whatever the traffic. By the database clock.
 */
const lastHour = sql<{ attempts: number; failures: number }>`(
  SELECT jsonb_build_object('attempts', COALESCE(sum(m.attempts), 0), 'failures', COALESCE(sum(m.failures), 0))
    FROM endpoint_attempt_minutes m
   WHERE m.endpoint_id = endpoints.id AND m.minute >= date_trunc('minute', now() - interval '1 hour'))`;

function withHealth<R extends { last_hour: { attempts: number; failures: number } }>(row: R): Omit<R, 'last_hour'> & {
  attempts_last_hour: number;
  failure_rate_last_hour: number | null;
} {
  const { last_hour, ...rest } = row;
  const attempts = Number(last_hour.attempts);
  const rate = attempts > 0 ? Math.round((Number(last_hour.failures) / attempts) * 1e4) / 1e4 : null;
  return { ...rest, attempts_last_hour: attempts, failure_rate_last_hour: rate };
}

/** A new endpoint with a fresh `whsec_` secret (returned once here, and by GET …/secret). */
export async function createEndpoint(db: Kysely<DB>, tenantId: string, input: EndpointInput): Promise<EndpointRow & { secret: string }> {
  return db
    .insertInto('endpoints')
    .values({
      tenant_id: tenantId,
      url: input.url,
      description: input.description,
      event_types: input.eventTypes,
      channel: input.channel,
      enabled: input.enabled,
      rate_limit_per_second: input.rateLimitPerSecond,
      secret: generateSecret(),
    })
    .returning([...COLUMNS, 'secret'])
    .executeTakeFirstOrThrow()
    .then((row) => ({ ...row, attempts_last_hour: 0, failure_rate_last_hour: null }));
}

export async function findEndpoint(db: Kysely<DB>, tenantId: string, id: string): Promise<EndpointRow | undefined> {
  const row = await db
    .selectFrom('endpoints')
    .select([...COLUMNS, lastHour.as('last_hour')])
    .where('tenant_id', '=', tenantId)
    .where('id', '=', id)
    .executeTakeFirst();
  return row && withHealth(row);
}

/** Keyset page, newest first: endpoints with seq below `beforeSeq`. */
export async function listEndpoints(db: Kysely<DB>, tenantId: string, page: { beforeSeq?: number; limit: number }): Promise<EndpointRow[]> {
  let query = db.selectFrom('endpoints').select([...COLUMNS, lastHour.as('last_hour')]).where('tenant_id', '=', tenantId);
  if (page.beforeSeq !== undefined) query = query.where('seq', '<', page.beforeSeq);
  return (await query.orderBy('seq', 'desc').limit(page.limit).execute()).map(withHealth);
}

/**
 * Changes the given fields. Its pending deliveries follow a new url or channel (they have not gone
 * out yet; an attempt in flight keeps the old one). Enabling closes the circuit breaker, clears the
 * failure streak and wakes the dispatchers: the deliveries it held while disabled are due (in order of
 * seq). One transaction; undefined when the tenant has no such endpoint.
 */
export async function updateEndpoint(
  db: Kysely<DB>,
  tenantId: string,
  id: string,
  patch: Partial<EndpointInput>,
): Promise<EndpointRow | undefined> {
  return db.transaction().execute(async (trx) => {
    const row = await trx
      .updateTable('endpoints')
      .set({
        ...(patch.url !== undefined && { url: patch.url }),
        ...(patch.description !== undefined && { description: patch.description }),
        ...(patch.eventTypes !== undefined && { event_types: patch.eventTypes }),
        ...(patch.channel !== undefined && { channel: patch.channel }),
        ...(patch.enabled !== undefined && { enabled: patch.enabled }),
        // Enabling starts afresh: breaker closed, no streak, no probe; the held deliveries are due.
        ...(patch.enabled === true && {
          breaker_state: 'closed' as const,
          consecutive_failures: 0,
          failing_since: null,
          probes_failed: 0,
          next_probe_at: null,
          probe_delivery_id: null,
          probe_lease_token: null,
          probe_until: null,
          disabled_reason: null,
          disabled_at: null,
        }),
        ...(patch.enabled === false && { disabled_reason: 'disabled by the tenant', disabled_at: sql<Date>`now()` }),
        ...(patch.rateLimitPerSecond !== undefined && { rate_limit_per_second: patch.rateLimitPerSecond }),
        updated_at: sql`now()`,
      })
      .where('tenant_id', '=', tenantId)
      .where('id', '=', id)
      .returning(COLUMNS)
      .executeTakeFirst();
    if (!row) return undefined;
    if (patch.enabled === true) {
      // Held while it was disabled (or open), some with a backoff still running: they all go now, in order of seq.
      await sql`UPDATE deliveries SET next_attempt_at = now(), updated_at = now()
                 WHERE endpoint_id = ${row.id} AND delivery_status = 'pending'`.execute(trx);
    }
    if (patch.url !== undefined || patch.channel !== undefined) {
      await sql`UPDATE deliveries SET target = ${row.url}, channel = ${row.channel}, updated_at = now()
                 WHERE endpoint_id = ${row.id} AND delivery_status = 'pending'`.execute(trx);
    }
    if (patch.enabled === true) await sql`SELECT pg_notify(${DUE_CHANNEL}, ${row.id})`.execute(trx);
    return findEndpoint(trx, tenantId, row.id);
  });
}

/**
 * Deletes the endpoint. Its pending deliveries are settled `skipped` first (nothing is sent to an
 * endpoint that is gone); its delivery history stays, no longer linked. Returns whether it existed.
 */
export async function deleteEndpoint(db: Kysely<DB>, tenantId: string, id: string): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    const row = await trx
      .selectFrom('endpoints')
      .select('id')
      .where('tenant_id', '=', tenantId)
      .where('id', '=', id)
      .forUpdate()
      .executeTakeFirst();
    if (!row) return false;
    await sql`UPDATE deliveries
                 SET delivery_status = 'skipped', last_error = 'endpoint deleted', locked_until = NULL,
                     lease_token = NULL, updated_at = now()
               WHERE endpoint_id = ${id} AND delivery_status = 'pending'`.execute(trx);
    await trx.deleteFrom('endpoints').where('id', '=', id).execute();
    return true;
  });
}
