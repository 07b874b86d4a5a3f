// Webhook signing secrets — a tenant's (its uploads' callbackUrl) and each endpoint's: read, and
// rotate with an overlap during which both sign.
import { sql, type Kysely } from 'kysely';
import type { DB } from '../db/schema.ts';
import { generateSecret } from './sign.ts';

/** How long the replaced secret keeps signing, so receivers can switch without missing a webhook. */
export const ROTATION_OVERLAP_HOURS = 24;

export type TenantSelector = { id: string } | { name: string };

export interface TenantSecret {
  name: string;
  webhookSecret: string;
  /** when the previous secret stops signing; null when no rotation overlap is running */
  previousSecretExpiresAt: Date | null;
}

export async function findWebhookSecret(db: Kysely<DB>, tenant: TenantSelector): Promise<TenantSecret | undefined> {
  const row = await db
    .selectFrom('tenants')
    .select(['name', 'webhook_secret', 'previous_secret_expires_at'])
    .where(...keyOf(tenant))
    .executeTakeFirst();
  return row && present(row);
}

/**
 * A new secret; the current one becomes the previous one and keeps signing for the overlap. A second
 * rotation within the overlap drops the oldest secret: at most two ever sign. One statement, so two
 * rotations at once cannot both keep the same previous secret.
 */
export async function rotateWebhookSecret(db: Kysely<DB>, tenant: TenantSelector): Promise<TenantSecret | undefined> {
  const row = await db
    .updateTable('tenants')
    .set({
      previous_webhook_secret: sql`webhook_secret`,
      previous_secret_expires_at: sql`now() + make_interval(hours => ${ROTATION_OVERLAP_HOURS})`,
      webhook_secret: generateSecret(),
    })
    .where(...keyOf(tenant))
    .returning(['name', 'webhook_secret', 'previous_secret_expires_at'])
    .executeTakeFirst();
  return row && present(row);
}

export interface EndpointSecret {
  secret: string;
  /** when the previous secret stops signing; null when no rotation overlap is running */
  previousSecretExpiresAt: Date | null;
}

/** An endpoint's signing secret; undefined when the tenant has no such endpoint. */
export async function findEndpointSecret(db: Kysely<DB>, tenantId: string, endpointId: string): Promise<EndpointSecret | undefined> {
  const row = await db
    .selectFrom('endpoints')
    .select(['secret', 'previous_secret_expires_at'])
    .where('tenant_id', '=', tenantId)
    .where('id', '=', endpointId)
    .executeTakeFirst();
  return row && { secret: row.secret, previousSecretExpiresAt: stillRunning(row.previous_secret_expires_at) };
}

/** rotateWebhookSecret's scheme for one endpoint of the tenant: the same overlap, at most two sign. */
export async function rotateEndpointSecret(db: Kysely<DB>, tenantId: string, endpointId: string): Promise<EndpointSecret | undefined> {
  const row = await db
    .updateTable('endpoints')
    .set({
      previous_secret: sql`secret`,
      previous_secret_expires_at: sql`now() + make_interval(hours => ${ROTATION_OVERLAP_HOURS})`,
      secret: generateSecret(),
      updated_at: sql`now()`,
    })
    .where('tenant_id', '=', tenantId)
    .where('id', '=', endpointId)
    .returning(['secret', 'previous_secret_expires_at'])
    .executeTakeFirst();
  return row && { secret: row.secret, previousSecretExpiresAt: stillRunning(row.previous_secret_expires_at) };
}

function keyOf(tenant: TenantSelector): ['id' | 'name', '=', string] {
  return 'id' in tenant ? ['id', '=', tenant.id] : ['name', '=', tenant.name];
}

function present(row: { name: string; webhook_secret: string; previous_secret_expires_at: Date | null }): TenantSecret {
  return { name: row.name, webhookSecret: row.webhook_secret, previousSecretExpiresAt: stillRunning(row.previous_secret_expires_at) };
}

function stillRunning(expires: Date | null): Date | null {
  return expires !== null && expires.getTime() > Date.now() ? expires : null;
}
