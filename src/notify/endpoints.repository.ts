// A tenant's endpoints: where its events go. Every query takes the caller's tenant id, so another
// tenant's endpoint is invisible (undefined → 404). Secrets are read and rotated in secrets.repository.ts.
import { sql, type Kysely, type Selectable } from 'kysely';
import type { DB, EndpointsTable } from '../db/schema.ts';
import type { EventType } from './event-types.ts';
import { DUE_CHANNEL } from './outbox.repository.ts';
import { generateSecret } from './sign.ts';

export type EndpointRow = Omit<Selectable<EndpointsTable>, 'secret' | 'previous_secret' | 'previous_secret_expires_at'>;

export type EndpointChannel = 'webhook' | 'slack';

export interface EndpointInput {
  /** absolute http(s) URL, already checked against the SSRF rules by the caller */
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
] as const;

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
    .executeTakeFirstOrThrow();
}

export async function findEndpoint(db: Kysely<DB>, tenantId: string, id: string): Promise<EndpointRow | undefined> {
  return db.selectFrom('endpoints').select(COLUMNS).where('tenant_id', '=', tenantId).where('id', '=', id).executeTakeFirst();
}

/** Keyset page, newest first: endpoints with seq below `beforeSeq`. */
export async function listEndpoints(db: Kysely<DB>, tenantId: string, page: { beforeSeq?: number; limit: number }): Promise<EndpointRow[]> {
  let query = db.selectFrom('endpoints').select(COLUMNS).where('tenant_id', '=', tenantId);
  if (page.beforeSeq !== undefined) query = query.where('seq', '<', page.beforeSeq);
  return query.orderBy('seq', 'desc').limit(page.limit).execute();
}

/**
 * Changes the given fields. Its pending deliveries follow a new url or channel (they have not gone
 * out yet; an attempt in flight keeps the old one). Enabling wakes the dispatchers: the deliveries it
 * held while disabled are due. One transaction; undefined when the tenant has no such endpoint.
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
        ...(patch.rateLimitPerSecond !== undefined && { rate_limit_per_second: patch.rateLimitPerSecond }),
        updated_at: sql`now()`,
      })
      .where('tenant_id', '=', tenantId)
      .where('id', '=', id)
      .returning(COLUMNS)
      .executeTakeFirst();
    if (!row) return undefined;
    if (patch.url !== undefined || patch.channel !== undefined) {
      await sql`UPDATE deliveries SET target = ${row.url}, channel = ${row.channel}, updated_at = now()
                 WHERE endpoint_id = ${row.id} AND delivery_status = 'pending'`.execute(trx);
    }
    if (patch.enabled === true) await sql`SELECT pg_notify(${DUE_CHANNEL}, ${row.id})`.execute(trx);
    return row;
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
