// SQL for pending direct-to-storage uploads (migrations/009_direct_uploads.sql). Reads and writes
// by id take the caller's tenant id: another tenant's pending upload is invisible.
import { sql, type Insertable, type Kysely, type Selectable, type Transaction } from 'kysely';
import type { DB, DirectUploadsTable } from '../db/schema.ts';

export type DirectUploadRow = Selectable<DirectUploadsTable> & { expired: boolean };
export type NewDirectUpload = Omit<Insertable<DirectUploadsTable>, 'created_at' | 'expires_at'>;

/** Every column, plus whether the upload has expired by the database's clock. */
const columns = (db: Kysely<DB>) =>
  db.selectFrom('direct_uploads').selectAll().select(sql<boolean>`expires_at <= now()`.as('expired'));

/**
 * Records a pending direct upload that expires `expiryHours` from now (the database's clock).
 * Returns its expiry, or null when its Idempotency-Key is already held by another pending upload of
 * the tenant (a concurrent request with the same key committed first).
 */
export async function insertDirectUpload(db: Kysely<DB>, row: NewDirectUpload, expiryHours: number): Promise<Date | null> {
  const inserted = await db
    .insertInto('direct_uploads')
    .values({ ...row, expires_at: sql<Date>`now() + make_interval(hours => ${expiryHours}::int)` })
    .onConflict((oc) => oc.columns(['tenant_id', 'idempotency_key']).where('idempotency_key', 'is not', null).doNothing())
    .returning('expires_at')
    .executeTakeFirst();
  return inserted?.expires_at ?? null;
}

export async function findDirectUploadByKey(db: Kysely<DB>, tenantId: string, key: string): Promise<DirectUploadRow | undefined> {
  return columns(db).where('tenant_id', '=', tenantId).where('idempotency_key', '=', key).executeTakeFirst();
}

/**
 * The tenant's pending upload `id`, locked until the transaction ends: completing it and the expiry
 * sweep cannot both act on it.
 */
export async function lockDirectUpload(trx: Transaction<DB>, tenantId: string, id: string): Promise<DirectUploadRow | undefined> {
  return columns(trx).where('tenant_id', '=', tenantId).where('id', '=', id).forUpdate().executeTakeFirst();
}

export async function deleteDirectUpload(trx: Transaction<DB>, id: string): Promise<void> {
  await trx.deleteFrom('direct_uploads').where('id', '=', id).execute();
}

/** Up to `limit` ids of expired pending uploads, the longest expired first. */
export async function expiredDirectUploadIds(db: Kysely<DB>, limit: number): Promise<string[]> {
  const rows = await db
    .selectFrom('direct_uploads')
    .select('id')
    .where('expires_at', '<=', sql<Date>`now()`)
    .orderBy('expires_at')
    .limit(limit)
    .execute();
  return rows.map((r) => r.id);
}

/**
 * Pending upload `id`, locked, if it is still expired and no one else holds it (a completion in
 * progress is skipped: it decides under the lock and finds the upload expired, or completes it first).
 */
export async function lockExpiredDirectUpload(trx: Transaction<DB>, id: string): Promise<DirectUploadRow | undefined> {
  return columns(trx)
    .where('id', '=', id)
    .where('expires_at', '<=', sql<Date>`now()`)
    .forUpdate()
    .skipLocked()
    .executeTakeFirst();
}
