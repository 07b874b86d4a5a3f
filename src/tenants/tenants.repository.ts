// Tenants and their API keys. Keys are random, shown once, stored only as SHA-256.
import { createHash, randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
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

export async function findTenantByApiKey(db: Kysely<DB>, key: string): Promise<Tenant | undefined> {
  if (!key.startsWith(KEY_PREFIX) || key.length > 200) return undefined;
  return db
    .selectFrom('api_keys')
    .innerJoin('tenants', 'tenants.id', 'api_keys.tenant_id')
    .select(['tenants.id', 'tenants.name'])
    .where('api_keys.key_hash', '=', hashApiKey(key))
    .where('api_keys.revoked_at', 'is', null)
    .executeTakeFirst();
}
