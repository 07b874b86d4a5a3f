// The end of `upload --wait` / `retry --wait`: what happened, in numbers. Pure.
import type { UploadBody } from './events.ts';
import { fields } from './output.ts';
import { formatBytes, formatCount, formatDuration } from './progress.ts';

export interface UploadSummary {
  uploadId: string;
  status: UploadBody['status'];
  rowsLoaded: number;
  rowsRejected: number;
  /** processing time: as the client watched it (first `processing` → the end), else the service's timestamps */
  durationMs: number;
  /** rows read (loaded + rejected) per second of processing */
  rowsPerSecond: number | null;
  /** sending the file, when this command sent it */
  uploadMs: number | null;
  /** the whole command, first byte sent to the end */
  elapsedMs: number;
  error: UploadBody['error'];
  upload: UploadBody;
}

export interface SummaryTiming {
  uploadMs: number | null;
  elapsedMs: number;
  /** from the first sight of `processing` to the end; null when the client never saw it processing */
  observedProcessingMs: number | null;
  /** from the start of waiting to the end */
  waitedMs: number;
}

export function summarize(final: UploadBody, timing: SummaryTiming): UploadSummary {
  // The client's own watch comes first: it needs no clock agreement with the service, and the service's
  // completedAt is a transaction start time, earlier than the real end of a long COPY.
  const started = final.startedAt ? Date.parse(final.startedAt) : NaN;
  const completed = final.completedAt ? Date.parse(final.completedAt) : NaN;
  const stamped = completed - started;
  const durationMs =
    timing.observedProcessingMs ?? (Number.isFinite(stamped) && stamped >= 0 ? stamped : timing.waitedMs);
  const rowsRead = final.rowsProcessed + final.rowsFailed;
  return {
    uploadId: final.uploadId,
    status: final.status,
    rowsLoaded: final.rowsProcessed,
    rowsRejected: final.rowsFailed,
    durationMs,
    rowsPerSecond: durationMs > 0 ? Math.round((rowsRead * 1000) / durationMs) : null,
    uploadMs: timing.uploadMs,
    elapsedMs: timing.elapsedMs,
    error: final.error,
    upload: final,
  };
}

/** `name.csv.gz (2.1 MiB gzip)`: the stored file, and how it is compressed. */
export function describeFile(u: UploadBody): string {
  return `${u.filename} (${formatBytes(u.sizeBytes)}${u.compression === 'gzip' ? ' gzip' : ''})`;
}

/** Stored bytes read of the stored size (what progress is measured by) and, for a compressed file, the CSV bytes they held. */
export function describeBytes(u: UploadBody): string {
  const read = `${formatBytes(u.bytesProcessed)} of ${formatBytes(u.sizeBytes)} read`;
  if (u.compression !== 'gzip') return read;
  return `${read} (compressed), ${formatBytes(u.uncompressedBytesProcessed ?? 0)} uncompressed`;
}

/** ` (upsert: 3 inserted, 2 updated)`: what an upsert or replace did to the table; '' for an append. */
export function describeMerge(u: UploadBody): string {
  if (!u.mode || u.mode === 'append' || typeof u.rowsInserted !== 'number') return '';
  return ` (${u.mode}: ${formatCount(u.rowsInserted)} inserted, ${formatCount(u.rowsUpdated ?? 0)} updated)`;
}

export function describeSummary(s: UploadSummary): string {
  const sent = s.uploadMs === null ? '' : `, upload ${formatDuration(s.uploadMs)}`;
  return fields([
    ['upload', s.uploadId],
    ['status', s.status],
    ['file', describeFile(s.upload)],
    ['bytes', s.upload.compression === 'gzip' ? describeBytes(s.upload) : null],
    ['loaded', `${formatCount(s.rowsLoaded)} rows${describeMerge(s.upload)}`],
    ['rejected', `${formatCount(s.rowsRejected)} rows${s.rowsRejected > 0 ? `  (see: stream-api errors ${s.uploadId})` : ''}`],
    ['duration', `${formatDuration(s.durationMs)} processing (${formatDuration(s.elapsedMs)} in all${sent})`],
    ['rate', s.rowsPerSecond === null ? null : `${formatCount(s.rowsPerSecond)} rows/s`],
    ['error', s.error ? `${s.error.code ?? 'error'}: ${s.error.message}` : null],
  ]);
}
