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

/** failed → uploaded with counters reset, and a new job; the row lock makes check and change one step. */
export async function resetForRetry(
  trx: Transaction<DB>,
  tenantId: string,
  uploadId: string,
  maxAttempts: number,
): Promise<'queued' | 'not_failed'> {
  const { rows } = await sql<{ id: string }>`
    UPDATE uploads
       SET status = 'uploaded', rows_processed = 0, rows_failed = 0, bytes_processed = 0,
           error_code = NULL, error = NULL, started_at = NULL, completed_at = NULL, updated_at = now()
     WHERE id = ${uploadId} AND tenant_id = ${tenantId} AND status = 'failed'
    RETURNING id`.execute(trx);
  if (rows.length === 0) return 'not_failed';
  await sql`DELETE FROM upload_errors WHERE upload_id = ${uploadId}`.execute(trx);
  await enqueueProcessing(trx, uploadId, maxAttempts);
  return 'queued';
}
