// The live events' shapes and the pure rules behind them: narrowing a NOTIFY payload, the progress
// fraction, and which notifications reach clients (every status change; progress at most ~1/s, with
// a rate measured between the ticks that were sent). No I/O here.
import type { UploadEvent } from '../uploads/channels.ts';

export type { UploadEvent };

/** data of a `progress` event (docs/CONTRACTS.md) */
export interface ProgressData {
  uploadId: string;
  status: string;
  rowsProcessed: number;
  rowsFailed: number;
  bytesProcessed: number;
  progress: number;
  rowsPerSecond: number;
}

/** data of an `upload` event on the tenant feed: the NOTIFY payload plus progress and rate */
export type FeedData = UploadEvent & { progress: number; rowsPerSecond: number };

export const FINAL_STATUSES: readonly string[] = ['completed', 'failed'];

export const isFinalStatus = (status: string): boolean => FINAL_STATUSES.includes(status);

/** Same rule as GET /uploads/:id: completed is 1, otherwise bytes read of the file's size. */
export function progressFraction(status: string, bytesProcessed: number, sizeBytes: number): number {
  if (status === 'completed') return 1;
  if (sizeBytes <= 0) return 0;
  return Math.min(1, Math.round((bytesProcessed / sizeBytes) * 1e4) / 1e4);
}

/** A NOTIFY payload is text from the database: parsed and checked, never trusted. */
export function parseUploadEvent(payload: string | undefined): UploadEvent | null {
  const v = parseJsonObject(payload);
  if (v === null) return null;
  const isNum = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);
  if (typeof v.uploadId !== 'string' || typeof v.tenantId !== 'string' || typeof v.status !== 'string') return null;
  if (!isNum(v.attempt) || !isNum(v.rowsProcessed) || !isNum(v.rowsFailed)) return null;
  if (!isNum(v.bytesProcessed) || !isNum(v.sizeBytes) || typeof v.at !== 'string') return null;
  const error = v.error as { code?: unknown; message?: unknown } | null | undefined;
  return {
    uploadId: v.uploadId,
    tenantId: v.tenantId,
    status: v.status,
    attempt: v.attempt,
    rowsProcessed: v.rowsProcessed,
    rowsFailed: v.rowsFailed,
    bytesProcessed: v.bytesProcessed,
    sizeBytes: v.sizeBytes,
    error:
      error && typeof error.message === 'string'
        ? { code: typeof error.code === 'string' ? error.code : null, message: error.message }
        : null,
    at: v.at,
  };
}

/** What a notification means for clients. */
export interface Classified {
  /** status or attempt differs from the last one seen (or none was seen): clients get a `status`/`done` */
  statusChanged: boolean;
  /** a progress tick to pass on (not throttled away) */
  progressDue: boolean;
  rowsPerSecond: number;
}

interface Track {
  attempt: number;
  status: string;
  /** rows and time (ms) of the last tick passed on: the rate is measured between passed ticks */
  rows: number;
  atMs: number;
  rowsPerSecond: number;
  touchedMs: number;
}

/**
 * Remembers, per upload, the last status and the last progress tick passed on. Ticks are timed by
 * the payload's `at` (the database clock at the UPDATE), so NOTIFY delivery jitter does not skew the
 * rate; a tick is passed on when `minIntervalMs` has elapsed since the last one (a bit under 1 s, so a
 * worker ticking every second is not halved by jitter).
 */
export class ProgressTracker {
  private readonly tracks = new Map<string, Track>();

  constructor(private readonly minIntervalMs: number) {}

  classify(event: UploadEvent, nowMs: number): Classified {
    const prev = this.tracks.get(event.uploadId);
    const parsedAt = Date.parse(event.at);
    const atMs = Number.isFinite(parsedAt) ? parsedAt : nowMs;
    const rows = event.rowsProcessed + event.rowsFailed;
    const processing = event.status === 'processing';

    if (!prev || prev.attempt !== event.attempt || prev.status !== event.status) {
      // Stale news (an older attempt than one already seen) changes nothing.
      if (prev && event.attempt < prev.attempt) return { statusChanged: false, progressDue: false, rowsPerSecond: 0 };
      this.tracks.set(event.uploadId, { attempt: event.attempt, status: event.status, rows, atMs, rowsPerSecond: 0, touchedMs: nowMs });
      // Seen for the first time mid-load (this process started late): the counts are news too.
      return { statusChanged: true, progressDue: !prev && processing && event.bytesProcessed > 0, rowsPerSecond: 0 };
    }
    prev.touchedMs = nowMs;
    if (!processing || atMs - prev.atMs < this.minIntervalMs) {
      return { statusChanged: false, progressDue: false, rowsPerSecond: prev.rowsPerSecond };
    }
    prev.rowsPerSecond = Math.max(0, Math.round(((rows - prev.rows) * 1000) / (atMs - prev.atMs)));
    prev.rows = rows;
    prev.atMs = atMs;
    return { statusChanged: false, progressDue: true, rowsPerSecond: prev.rowsPerSecond };
  }

  /** The last measured rate (0 when unknown or not processing). */
  rateOf(uploadId: string): number {
    const track = this.tracks.get(uploadId);
    return track?.status === 'processing' ? track.rowsPerSecond : 0;
  }

  /** Forgets uploads not heard of for `idleMs` (finished long ago, or deleted). */
  prune(nowMs: number, idleMs: number): void {
    for (const [id, track] of this.tracks) if (nowMs - track.touchedMs > idleMs) this.tracks.delete(id);
  }

  get size(): number {
    return this.tracks.size;
  }
}

type Counted = Pick<UploadEvent, 'uploadId' | 'status' | 'rowsProcessed' | 'rowsFailed' | 'bytesProcessed' | 'sizeBytes'>;

export function toProgressData(event: Counted, rowsPerSecond: number): ProgressData {
  return {
    uploadId: event.uploadId,
    status: event.status,
    rowsProcessed: event.rowsProcessed,
    rowsFailed: event.rowsFailed,
    bytesProcessed: event.bytesProcessed,
    progress: progressFraction(event.status, event.bytesProcessed, event.sizeBytes),
    rowsPerSecond,
  };
}

export function toFeedData(event: UploadEvent, rowsPerSecond: number): FeedData {
  return { ...event, progress: progressFraction(event.status, event.bytesProcessed, event.sizeBytes), rowsPerSecond };
}

/**
 * Event ids: one increasing counter per process, started from the clock so ids keep increasing across
 * restarts. Opaque to clients: every event is a full snapshot, so resuming never needs a replay.
 */
export function createEventIds(nowMs: number = Date.now()): () => string {
  let next = nowMs * 1000;
  return () => String(next++);
}

/** One Server-Sent Events frame. JSON never contains a raw newline, so `data` is one line. */
export function sseFrame(event: string, id: string, data: unknown): string {
  return `id: ${id}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

/** A tenant's operational notice on the upload events channel (`kind` names its feed event). */
export interface TenantNotice {
  kind: 'endpoint.disabled';
  tenantId: string;
  data: Record<string, unknown>;
}

/** Narrows a NOTIFY payload to a tenant notice; null for anything else (an upload event above all). */
export function parseTenantNotice(payload: string | undefined): TenantNotice | null {
  const v = parseJsonObject(payload);
  if (v === null) return null;
  if (v.kind !== 'endpoint.disabled' || typeof v.tenantId !== 'string') return null;
  if (typeof v.data !== 'object' || v.data === null || Array.isArray(v.data)) return null;
  return { kind: v.kind, tenantId: v.tenantId, data: v.data as Record<string, unknown> };
}

/** A NOTIFY payload parsed as a JSON object (arrays count as objects here; the callers check fields), else null. */
function parseJsonObject(payload: string | undefined): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(payload ?? '');
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}
