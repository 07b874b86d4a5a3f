// Following an upload to its end over GET /uploads/:id/events (SSE, docs/CONTRACTS.md "Live progress").
// A dropped stream is resumed with Last-Event-ID; a service without the live route is polled instead.
import type { ApiClient } from './api.ts';
import { ApiError, ConnectionError } from './errors.ts';
import { SseParser } from './sse.ts';

/** The body of GET /uploads/:id (src/uploads/present.ts), as far as the client reads it. */
export interface UploadBody {
  uploadId: string;
  status: 'uploaded' | 'processing' | 'completed' | 'failed';
  dataset: string;
  filename: string;
  sizeBytes: number;
  rowsProcessed: number;
  rowsFailed: number;
  /** absent from services older than loading modes */
  mode?: 'append' | 'upsert' | 'replace';
  rowsInserted?: number | null;
  rowsUpdated?: number | null;
  /** absent from services older than dry runs and undo */
  dryRun?: boolean;
  rowsRemovedAt?: string | null;
  rowsRemoved?: number | null;
  bytesProcessed: number;
  /** absent from services older than compressed uploads */
  compression?: 'gzip' | 'none' | null;
  uncompressedBytesProcessed?: number;
  progress: number;
  attempt: number;
  error: { code: string | null; message: string } | null;
  createdAt: string | null;
  startedAt: string | null;
  completedAt: string | null;
  [more: string]: unknown;
}

export interface ProgressTick {
  status: string;
  rowsProcessed: number;
  rowsFailed: number;
  bytesProcessed: number;
  progress: number;
  /** the service's figure; absent when polling */
  rowsPerSecond?: number;
}

export type LiveUpdate =
  | { kind: 'status'; upload: UploadBody }
  | { kind: 'progress'; tick: ProgressTick }
  | { kind: 'reconnecting'; attempt: number; reason: string }
  | { kind: 'polling' };

export interface FollowOptions {
  /** consecutive failed (re)connections before giving up */
  maxFailures?: number;
  pollIntervalMs?: number;
  /** a stream silent this long is dropped and resumed (cheap: Last-Event-ID) */
  idleTimeoutMs?: number;
  sleep?: (ms: number) => Promise<void>;
}

export function isFinalStatus(status: string): boolean {
  return status === 'completed' || status === 'failed';
}

/** Resolves with the final upload body (status `completed` or `failed`). */
export async function followUpload(
  client: ApiClient,
  uploadId: string,
  onUpdate: (update: LiveUpdate) => void,
  opts: FollowOptions = {},
): Promise<UploadBody> {
  const maxFailures = opts.maxFailures ?? 8;
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const path = `/uploads/${encodeURIComponent(uploadId)}/events`;
  const parser = new SseParser();
  let failures = 0;

  for (;;) {
    let reason: string;
    try {
      const res = await client.open('GET', path, {
        headers: { accept: 'text/event-stream', ...(parser.lastEventId !== null ? { 'last-event-id': parser.lastEventId } : {}) },
        idleTimeoutMs: opts.idleTimeoutMs ?? 120_000,
      });
      parser.reset();
      res.setEncoding('utf8');
      try {
        for await (const chunk of res as AsyncIterable<string>) {
          for (const event of parser.push(chunk)) {
            failures = 0; // the stream works: a later drop starts a fresh count
            const final = handle(event.event, event.data, onUpdate);
            if (final) {
              res.destroy();
              return final;
            }
          }
        }
        reason = 'the event stream ended before the upload did';
      } catch (err) {
        reason = `the event stream broke (${err instanceof Error ? err.message : String(err)})`;
      }
    } catch (err) {
      if (err instanceof ApiError && err.code === 'route_not_found') {
        onUpdate({ kind: 'polling' });
        return poll(client, uploadId, onUpdate, opts.pollIntervalMs ?? 1000, sleep);
      }
      if (!retryable(err)) throw err;
      reason = err instanceof Error ? err.message : String(err);
    }
    failures += 1;
    if (failures > maxFailures) {
      throw new ConnectionError('event_stream_lost', `lost the progress stream after ${maxFailures} tries: ${reason}`);
    }
    onUpdate({ kind: 'reconnecting', attempt: failures, reason });
    await sleep(parser.retryMs ?? Math.min(10_000, 500 * 2 ** (failures - 1)));
  }
}

/** Returns the final body on `done`; status and progress go to `onUpdate`. Unknown event types are ignored. */
function handle(event: string, data: string, onUpdate: (update: LiveUpdate) => void): UploadBody | null {
  if (event !== 'status' && event !== 'progress' && event !== 'done') return null;
  let body: unknown;
  try {
    body = JSON.parse(data);
  } catch {
    return null; // not ours to judge: a later event or `done` carries the state again
  }
  if (typeof body !== 'object' || body === null) return null;
  if (event === 'progress') {
    onUpdate({ kind: 'progress', tick: body as ProgressTick });
    return null;
  }
  const upload = body as UploadBody;
  onUpdate({ kind: 'status', upload });
  return event === 'done' ? upload : null;
}

async function poll(
  client: ApiClient,
  uploadId: string,
  onUpdate: (update: LiveUpdate) => void,
  intervalMs: number,
  sleep: (ms: number) => Promise<void>,
): Promise<UploadBody> {
  for (;;) {
    const upload = await client.json<UploadBody>('GET', `/uploads/${encodeURIComponent(uploadId)}`);
    onUpdate({ kind: 'status', upload });
    if (isFinalStatus(upload.status)) return upload;
    await sleep(intervalMs);
  }
}

/** Worth reconnecting for: the socket, or a service restarting behind a proxy. Not: 401, 404, 4xx. */
function retryable(err: unknown): boolean {
  if (err instanceof ConnectionError) return true;
  return err instanceof ApiError && (err.status === 502 || err.status === 503 || err.status === 504);
}
