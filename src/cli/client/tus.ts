// The resumable upload of a file (tus 1.0, tus-js-client) to the service's /files/ endpoint. A network
// failure is retried from the service's offset (HEAD); the upload's URL is kept in a small JSON file under
// the CLI's state folder (tus-js-client's FileUrlStorage), so the same command run again after the CLI
// was stopped or killed resumes the same upload instead of starting over.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import * as tus from 'tus-js-client';
import type { UploadEvents, UploadFile } from './api.ts';
import type { ClientConfig } from './config.ts';
import { ApiError, apiErrorFrom, ConnectionError } from './errors.ts';

/** A file to upload, with what its fingerprint needs. */
export interface TusFile extends UploadFile {
  /** last modification (ms since the epoch): a changed file is never resumed */
  mtimeMs: number;
}

export interface TusEvents extends UploadEvents {
  /** the upload continues an earlier one (this run or an earlier run) from `offset` bytes */
  onResume?: (offset: number) => void;
  /** a request failed and is retried after `delayMs` (then HEAD, then the rest from that offset) */
  onRetry?: (reason: string, delayMs: number) => void;
}

export interface TusOptions {
  /** the CLI's state folder (UploadSettings.stateDir) */
  stateDir: string;
  /** Upload-Metadata: the multipart form fields under the same names (dataset, callbackUrl, …) */
  metadata: Record<string, string>;
  retryDelaysMs?: number[];
}

/** The upload resource the completed tus upload became. */
export interface TusCompleted {
  uploadId: string;
  statusUrl: string;
  /** the url of the tus upload (`/files/<id>`) */
  tusUrl: string;
  /** bytes the service already held when this run started sending (0 for a new upload) */
  resumedFrom: number;
}

/** The file under the state folder that holds the URLs of unfinished uploads, by fingerprint. */
export const RESUME_STATE_FILE = 'tus-uploads.json';

/**
 * After a failure: wait, ask HEAD for the offset, send the rest. Eight tries spread over ~2 minutes; a
 * try that moved the offset resets the count (tus-js-client), so a long upload survives many cuts.
 */
export const RETRY_DELAYS_MS = [0, 1000, 3000, 5000, 10_000, 20_000, 30_000, 60_000];

/**
 * Identifies one file sent to one service by one key: the absolute path, the size, the modification time,
 * the service URL and the API key (a key belongs to one tenant). Only a SHA-256 of these is stored, so the
 * state file names no key. Another file, a changed file, another server or another key never resumes.
 */
export function tusFingerprint(file: Pick<TusFile, 'path' | 'size' | 'mtimeMs'>, baseUrl: string, key: string): string {
  const identity = JSON.stringify([path.resolve(file.path), file.size, Math.trunc(file.mtimeMs), baseUrl, key]);
  return `stream-api-${createHash('sha256').update(identity).digest('hex')}`;
}

/** tus-js-client's own retry rule (any failure but a 4xx, except 409 offset moved and 423 locked). */
function retryable(err: tus.DetailedError): boolean {
  const status = err.originalResponse?.getStatus() ?? 0;
  return status < 400 || status >= 500 || status === 409 || status === 423;
}

type UrlStorageConstructor = new (filePath: string) => NonNullable<tus.UploadOptions['urlStorage']>;

/**
 * Uploads `file` through tus and resolves once the service has recorded it (the final PATCH answers
 * `Upload-Id` and `Upload-Status-Url`). Rejects with ApiError for a refusal (4xx, after any retries a
 * 409/423 allows), ConnectionError when the service stays unreachable through every retry.
 */
export async function tusUpload(config: ClientConfig, file: TusFile, options: TusOptions, events: TusEvents = {}): Promise<TusCompleted> {
  await mkdir(options.stateDir, { recursive: true, mode: 0o700 });
  // Not in tus-js-client's type definitions, but exported by its Node build (with file locking).
  const { FileUrlStorage } = tus as unknown as { FileUrlStorage: UrlStorageConstructor };
  const fingerprint = tusFingerprint(file, config.url, config.key);
  const urlStorage = new FileUrlStorage(path.join(options.stateDir, RESUME_STATE_FILE));
  // tus-js-client's removeFingerprintOnSuccess does not wait for the write, and the command exits soon
  // after success: the entries are removed here, before resolving.
  const forget = async () => {
    for (const entry of await urlStorage.findUploadsByFingerprint(fingerprint)) await urlStorage.removeUpload(entry.urlStorageKey);
  };

  let uploadId = '';
  let statusUrl = '';
  let resumedFrom = 0;
  let patched = false;
  let sentAll = false;
  return new Promise((resolve, reject) => {
    // A ReadStream with a path: tus-js-client reads each PATCH body from the file at its offset.
    const upload: tus.Upload = new tus.Upload(createReadStream(file.path) as never, {
      endpoint: `${config.url}/files/`,
      headers: { Authorization: `Bearer ${config.key}`, 'User-Agent': 'stream-api-cli' },
      metadata: { filename: file.filename, ...options.metadata },
      uploadSize: file.size,
      fingerprint: async () => fingerprint,
      urlStorage,
      storeFingerprintForResuming: true,
      removeFingerprintOnSuccess: false,
      retryDelays: options.retryDelaysMs ?? RETRY_DELAYS_MS,
      onShouldRetry: (err, attempt, opts) => {
        if (!retryable(err)) return false;
        const cause = err.causingError as (Error & { code?: string }) | null;
        const status = err.originalResponse?.getStatus();
        events.onRetry?.(status ? `HTTP ${status}` : (cause?.code ?? cause?.message ?? 'connection failed'), opts.retryDelays?.[attempt] ?? 0);
        return true;
      },
      onBeforeRequest: (req) => {
        if (req.getMethod() === 'PATCH') patched = true;
      },
      onAfterResponse: (req, res) => {
        if (req.getMethod() === 'HEAD' && res.getStatus() === 200) {
          const offset = Number(res.getHeader('Upload-Offset') ?? 0);
          if (!patched) resumedFrom = offset; // held before this run sent anything
          events.onResume?.(offset);
        }
        uploadId ||= res.getHeader('Upload-Id') ?? '';
        statusUrl ||= res.getHeader('Upload-Status-Url') ?? '';
      },
      onProgress: (sent) => {
        events.onProgress?.(sent);
        if (sent >= file.size && !sentAll) {
          sentAll = true;
          events.onSent?.();
        }
      },
      onSuccess: () => {
        // Resumed an upload whose last answer was lost: its id is the one in its tus URL (see README).
        const tusUrl = upload.url ?? '';
        uploadId ||= new URL(tusUrl).pathname.split('/').at(-1) ?? '';
        const completed = { uploadId, statusUrl: statusUrl || `/uploads/${uploadId}`, tusUrl, resumedFrom };
        forget().then(() => resolve(completed), reject);
      },
      onError: (err) => reject(clientError(err, config.url)),
    });
    upload
      .findPreviousUploads()
      .then((previous) => {
        const latest = previous.sort((a, b) => Date.parse(b.creationTime) - Date.parse(a.creationTime))[0];
        if (latest) upload.resumeFromPreviousUpload(latest);
        upload.start();
      })
      .catch((err: unknown) => reject(err instanceof Error ? err : new Error(String(err))));
  });
}

/** tus-js-client's error → the client's: the API's answer as ApiError, a socket failure as ConnectionError. */
function clientError(err: Error, baseUrl: string): Error {
  const detailed = err as Partial<tus.DetailedError>;
  const res = detailed.originalResponse;
  if (res) return apiErrorFrom(res.getStatus(), res.getBody() ?? '');
  const cause = detailed.causingError as (Error & { code?: string }) | null | undefined;
  if (detailed.originalRequest) {
    return new ConnectionError(cause?.code ?? 'connection_failed', `cannot reach the service at ${baseUrl}: ${cause?.message ?? err.message}`, { cause: err });
  }
  return err instanceof ApiError ? err : new Error(err.message, { cause: err });
}
