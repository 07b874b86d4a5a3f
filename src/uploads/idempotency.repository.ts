// Idempotency-Key records: the first response to a keyed upload, replayed for 24 hours.
import { sql, type Kysely, type Transaction } from 'kysely';
import type { DB } from '../db/schema.ts';

export interface StoredResponse {
  requestHash: string;
  response: unknown;
}

const TTL = sql`interval '24 hours'`;

export async function findIdempotentResponse(db: Kysely<DB>, tenantId: string, key: string): Promise<StoredResponse | undefined> {
  const row = await db
    .selectFrom('idempotency_keys')
    .select(['request_hash', 'response'])
    .where('tenant_id', '=', tenantId)
    .where('key', '=', key)
    .where('created_at', '>', sql<Date>`now() - ${TTL}`)
    .executeTakeFirst();
  return row && { requestHash: row.request_hash, response: row.response };
}

/**
 * Claims the key for this upload in the caller's transaction. Returns false when a live (under 24 h)
 * record holds it — including one committed concurrently, which this insert waits for. An expired
 * record is taken over.
 */
export async function claimIdempotencyKey(
  trx: Transaction<DB>,
  claim: { tenantId: string; key: string; requestHash: string; uploadId: string; response: unknown },
): Promise<boolean> {
  const result = await sql`
    INSERT INTO idempotency_keys (tenant_id, key, request_hash, upload_id, response)
    VALUES (${claim.tenantId}, ${claim.key}, ${claim.requestHash}, ${claim.uploadId}, ${JSON.stringify(claim.response)}::jsonb)
    ON CONFLICT (tenant_id, key) DO UPDATE
      SET request_hash = EXCLUDED.request_hash, upload_id = EXCLUDED.upload_id,
          response = EXCLUDED.response, created_at = now()
      WHERE idempotency_keys.created_at <= now() - ${TTL}
    RETURNING 1`.execute(trx);
  return result.rows.length === 1;
}
