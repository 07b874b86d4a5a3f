// Tenants and their API keys. Keys are random, shown once, stored only as SHA-256.
import { createHash, randomBytes } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import type { DB } from '../db/schema.ts';
import { generateSecret } from '../notify/sign.ts';

export interface Tenant {
  id: string;
  name: string;
}

const KEY_PREFIX = 'sapi_';

export function hashApiKey(key: string): Buffer {
  return createHash('sha256').update(key).digest();
}

/** Returns the tenant named `name`, creating it (with a webhook signing secret) if needed. */
export async function ensureTenant(db: Kysely<DB>, name: string): Promise<Tenant> {
  await db
    .insertInto('tenants')
    .values({ name, webhook_secret: generateSecret() })
    .onConflict((oc) => oc.column('name').doNothing())
    .execute();
  return db.selectFrom('tenants').select(['id', 'name']).where('name', '=', name).executeTakeFirstOrThrow();
}

/** Creates a new API key for the tenant and returns it; only its hash is stored. */
export async function createApiKey(db: Kysely<DB>, tenantId: string): Promise<string> {
  const key = KEY_PREFIX + randomBytes(32).toString('base64url');
  await db
    .insertInto('api_keys')
    .values({ tenant_id: tenantId, key_hash: hashApiKey(key), prefix: key.slice(0, KEY_PREFIX.length + 6) })
    .execute();
  return key;
}

/** An unrevoked API key's tenant and the key's row id (what a live stream re-checks later). */
export interface KeyAccess {
  tenant: Tenant;
  apiKeyId: string;
}

/** The tenant and key id of an unrevoked key; undefined for an unknown, malformed or revoked key. */
export async function findApiKey(db: Kysely<DB>, key: string): Promise<KeyAccess | undefined> {
  if (!key.startsWith(KEY_PREFIX) || key.length > 200) return undefined;
  const row = await db
    .selectFrom('api_keys')
    .innerJoin('tenants', 'tenants.id', 'api_keys.tenant_id')
    .select(['tenants.id', 'tenants.name', 'api_keys.id as apiKeyId'])
    .where('api_keys.key_hash', '=', hashApiKey(key))
    .where('api_keys.revoked_at', 'is', null)
    .executeTakeFirst();
  return row && { tenant: { id: row.id, name: row.name }, apiKeyId: row.apiKeyId };
}

export async function findTenantByApiKey(db: Kysely<DB>, key: string): Promise<Tenant | undefined> {
  return (await findApiKey(db, key))?.tenant;
}

/**
 * Revokes an API key, given the key itself. From then on it authenticates nothing, nor do the
 * `?token=`s it minted, and the live streams either opened end at their next access check (one
 * heartbeat). Returns the key's display prefix and tenant name; undefined when no unrevoked key matches.
 */
export async function revokeApiKey(db: Kysely<DB>, key: string): Promise<{ prefix: string; tenant: string } | undefined> {
  return db
    .updateTable('api_keys')
    .from('tenants')
    .set({ revoked_at: sql`now()` })
    .whereRef('tenants.id', '=', 'api_keys.tenant_id')
    .where('api_keys.key_hash', '=', hashApiKey(key))
    .where('api_keys.revoked_at', 'is', null)
    .returning(['api_keys.prefix as prefix', 'tenants.name as tenant'])
    .executeTakeFirst();
}
