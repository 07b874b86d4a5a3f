// Postgres NOTIFY channels that carry upload status and progress to API processes.

/** Every status change and progress tick of every upload (payload carries tenantId). */
export const UPLOAD_EVENTS_CHANNEL = 'upload_events';

/** The per-upload channel (identifiers are ≤ 63 bytes: a uuid without dashes fits). */
export function uploadChannel(uploadId: string): string {
  return `upload_${uploadId.replaceAll('-', '')}`;
}

export interface UploadEvent {
  uploadId: string;
  tenantId: string;
  status: string;
  attempt: number;
  rowsProcessed: number;
  rowsFailed: number;
  bytesProcessed: number;
  sizeBytes: number;
  error: { code: string | null; message: string } | null;
  at: string;
}
