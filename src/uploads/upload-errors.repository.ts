// Rejected rows of an upload, and putting a failed upload back in the queue.
import { sql, type Kysely, type Transaction } from 'kysely';
import type { DB } from '../db/schema.ts';
import { enqueueProcessing } from './uploads.repository.ts';

export interface UploadErrorRow {
  line: number;
  column_name: string | null;
  code: string;
  message: string;
  raw: string;
}

export async function listUploadErrors(db: Kysely<DB>, uploadId: string, afterLine: number, limit: number): Promise<UploadErrorRow[]> {
  const { rows } = await sql<UploadErrorRow>`
    SELECT line, column_name, code, message, raw FROM upload_errors
     WHERE upload_id = ${uploadId} AND line > ${afterLine}
     ORDER BY line LIMIT ${limit}`.execute(db);
  return rows;
}

export type RetryDecision = 'queued' | 'not_found' | 'not_failed' | 'object_gone';

/**
 * failed → uploaded with counters reset, and a new job, in the caller's transaction. The upload row
 * is locked first, and the retry is refused before anything changes when the upload is not failed or
 * its object is gone: marked deleted (a retention purge has claimed it) or missing from the store
 * (`objectExists` is asked while the lock is held). Holding the lock is what keeps a purge from
 * deleting the object of a retry it accepts; the interleavings are listed in retention/purge.ts.
 */
export async function resetForRetry(
  trx: Transaction<DB>,
  tenantId: string,
  uploadId: string,
  maxAttempts: number,
  objectExists: (objectKey: string) => Promise<boolean>,
): Promise<RetryDecision> {
  const row = await trx
    .selectFrom('uploads')
    .select(['status', 'object_key', 'object_deleted_at'])
    .where('tenant_id', '=', tenantId)
    .where('id', '=', uploadId)
    .forUpdate()
    .executeTakeFirst();
  if (!row) return 'not_found';
  if (row.status !== 'failed') return 'not_failed';
  if (row.object_deleted_at !== null || !(await objectExists(row.object_key))) return 'object_gone';
  await sql`
    UPDATE uploads
       SET status = 'uploaded', rows_processed = 0, rows_failed = 0, bytes_processed = 0, uncompressed_bytes_processed = NULL,
           error_code = NULL, error = NULL, started_at = NULL, completed_at = NULL, updated_at = now()
     WHERE id = ${uploadId}`.execute(trx);
  await sql`DELETE FROM upload_errors WHERE upload_id = ${uploadId}`.execute(trx);
  await enqueueProcessing(trx, uploadId, maxAttempts);
  return 'queued';
}
