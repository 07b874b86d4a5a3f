// The public shape of an upload: camelCase, ISO-8601 timestamps, explicit nulls.
import type { UploadRow } from './uploads.repository.ts';

export function presentUpload(row: UploadRow) {
  return {
    uploadId: row.id,
    status: row.status,
    dataset: row.dataset,
    mode: row.mode,
    dryRun: row.dry_run,
    filename: row.filename,
    sizeBytes: row.size_bytes,
    sha256: row.sha256,
    compression: row.compression,
    rowsProcessed: row.rows_processed,
    rowsFailed: row.rows_failed,
    // upsert / replace: what the rows loaded did to the table (an append inserts rowsProcessed rows)
    rowsInserted: row.rows_inserted === null ? (row.mode === 'append' && row.status === 'completed' ? row.rows_processed : null) : Number(row.rows_inserted),
    rowsUpdated: row.rows_updated === null ? (row.mode === 'append' && row.status === 'completed' ? 0 : null) : Number(row.rows_updated),
    bytesProcessed: row.bytes_processed,
    // NULL on uploads loaded before the column existed: all uncompressed, so the stored bytes are the CSV's
    uncompressedBytesProcessed: row.uncompressed_bytes_processed ?? row.bytes_processed,
    progress: progressOf(row),
    attempt: row.attempt,
    error: row.error === null ? null : { code: row.error_code, message: row.error },
    unknownColumns: row.unknown_columns ?? [],
    callbackUrl: row.callback_url,
    // DELETE /uploads/:id/rows: when it took the upload's rows back, and how many were still its own
    rowsRemovedAt: iso(row.rows_removed_at),
    rowsRemoved: row.rows_removed === null ? null : Number(row.rows_removed),
    createdAt: iso(row.created_at),
    startedAt: iso(row.started_at),
    completedAt: iso(row.completed_at),
    updatedAt: iso(row.updated_at),
  };
}

/** Stored bytes read / stored size: for a gzip file, by compressed bytes (its uncompressed size is unknown until the end). */
function progressOf(row: UploadRow): number {
  if (row.status === 'completed') return 1;
  if (row.size_bytes <= 0) return 0;
  return Math.min(1, Math.round((row.bytes_processed / row.size_bytes) * 1e4) / 1e4);
}

function iso(value: Date | null): string | null {
  return value === null ? null : value.toISOString();
}

export function isFinal(row: UploadRow): boolean {
  return row.status === 'completed' || row.status === 'failed';
}
