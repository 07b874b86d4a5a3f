// The one query behind the live streams' access re-check: for every open stream's key, token and
// upload at once, which are still valid. Each part is a primary-key lookup (api_keys.id,
// access_tokens.token_hash, uploads.id), so the cost grows with distinct credentials, not with time.
import { sql, type Kysely } from 'kysely';
import type { DB } from '../db/schema.ts';
import type { ValidGrants } from './access.ts';

export interface GrantsToCheck {
  apiKeyIds: readonly string[];
  tokenHashes: readonly Buffer[];
  uploadIds: readonly string[];
}

/** One round trip, whatever the number of streams. */
export async function findValidGrants(db: Kysely<DB>, check: GrantsToCheck): Promise<ValidGrants> {
  const { rows } = await sql<{ kind: 'key' | 'token' | 'upload'; ref: string; tenant_id: string | null }>`
    SELECT 'key' AS kind, id::text AS ref, NULL::text AS tenant_id
      FROM api_keys WHERE id = ANY(${check.apiKeyIds}::uuid[]) AND revoked_at IS NULL
    UNION ALL
    SELECT 'token', encode(token_hash, 'hex'), NULL
      FROM access_tokens WHERE token_hash = ANY(${check.tokenHashes}::bytea[]) AND expires_at > now()
    UNION ALL
    SELECT 'upload', id::text, tenant_id::text
      FROM uploads WHERE id = ANY(${check.uploadIds}::uuid[])`.execute(db);
  const apiKeyIds = new Set<string>();
  const tokenHashes = new Set<string>();
  const uploadTenants = new Map<string, string>();
  for (const row of rows) {
    if (row.kind === 'key') apiKeyIds.add(row.ref);
    else if (row.kind === 'token') tokenHashes.add(row.ref);
    else uploadTenants.set(row.ref, row.tenant_id!);
  }
  return { apiKeyIds, tokenHashes, uploadTenants };
}
