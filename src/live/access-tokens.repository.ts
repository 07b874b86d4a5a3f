// Short-lived access tokens (POST /auth/token) for clients that cannot send an Authorization header.
// Random, shown once, stored only as SHA-256; valid until expiry and while the minting key is unrevoked.
import { createHash, randomBytes } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import type { DB } from '../db/schema.ts';
import type { Tenant } from '../tenants/tenants.repository.ts';

const TOKEN_PREFIX = 'sat_';
/** Expired rows removed per mint: enough to keep up, small enough never to slow a request. */
const PURGE_BATCH = 500;

function hashToken(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}

/** Mints a token for the tenant of the API key with this hash; null if that key is gone or revoked. */
export async function createAccessToken(
  db: Kysely<DB>,
  apiKeyHash: Buffer,
  ttlSeconds: number,
): Promise<{ token: string; expiresAt: Date } | null> {
  const token = TOKEN_PREFIX + randomBytes(32).toString('base64url');
  const { rows } = await sql<{ expires_at: Date }>`
    INSERT INTO access_tokens (token_hash, tenant_id, api_key_id, expires_at)
    SELECT ${hashToken(token)}, k.tenant_id, k.id, now() + make_interval(secs => ${ttlSeconds})
      FROM api_keys k
     WHERE k.key_hash = ${apiKeyHash} AND k.revoked_at IS NULL
    RETURNING expires_at`.execute(db);
  const row = rows[0];
  return row ? { token, expiresAt: row.expires_at } : null;
}

/** What a valid token grants: its tenant, the key that minted it, and how long it has left. */
export interface TokenAccess {
  tenant: Tenant;
  apiKeyId: string;
  tokenHash: Buffer;
  /** time left, by the database clock (so this process's clock may differ from the database's) */
  expiresInMs: number;
}

/** A token's grant while it is unexpired and its key unrevoked; undefined otherwise. */
export async function findAccessToken(db: Kysely<DB>, token: string): Promise<TokenAccess | undefined> {
  if (!token.startsWith(TOKEN_PREFIX) || token.length > 200) return undefined;
  const tokenHash = hashToken(token);
  const { rows } = await sql<{ id: string; name: string; api_key_id: string; expires_in_ms: number }>`
    SELECT t.id, t.name, a.api_key_id, (extract(epoch FROM a.expires_at - now()) * 1000)::float8 AS expires_in_ms
      FROM access_tokens a
      JOIN api_keys k ON k.id = a.api_key_id
      JOIN tenants t ON t.id = a.tenant_id
     WHERE a.token_hash = ${tokenHash} AND a.expires_at > now() AND k.revoked_at IS NULL`.execute(db);
  const row = rows[0];
  return row && { tenant: { id: row.id, name: row.name }, apiKeyId: row.api_key_id, tokenHash, expiresInMs: row.expires_in_ms };
}

/** Deletes a batch of expired tokens; called opportunistically, so the table never grows unbounded. */
export async function purgeExpiredAccessTokens(db: Kysely<DB>): Promise<number> {
  const result = await sql`
    DELETE FROM access_tokens
     WHERE token_hash IN (SELECT token_hash FROM access_tokens
                           WHERE expires_at < now() ORDER BY expires_at LIMIT ${PURGE_BATCH})`.execute(db);
  return Number(result.numAffectedRows ?? 0);
}
