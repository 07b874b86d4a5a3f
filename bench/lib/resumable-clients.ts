// The clients of bench/upload.ts that do not send the file in one request: tus (tus-js-client, as a
// Node client uses it) and direct-to-storage (presigned part URLs PUT a few at a time, as the AWS
// SDK's own uploader does). Each resolves with the service's upload id once it answered, or throws.
import { createReadStream } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { pipeline } from 'node:stream/promises';
import * as tus from 'tus-js-client';

/** Bytes per read of the file (as bench/lib/upload-clients.ts). */
const READ_BYTES = 256 * 1024;

export interface TusOptions {
  /** bytes per PATCH (tus-js-client's chunkSize); Infinity: one PATCH for the whole file */
  chunkSize: number;
  /** tus-js-client's retryDelays: [] fails at the first error (the bench), else resume after each */
  retryDelays?: number[];
  /** the API's URL as the client sees it (a proxy in between, for the resume demo) */
  endpoint?: string;
  onProgress?: (sent: number, total: number) => void;
  /** every answer: its request's method, status and one header (e.g. a HEAD's Upload-Offset) */
  onResponse?: (method: string, status: number, header: (name: string) => string | undefined) => void;
  /** each error tus-js-client is about to retry (after which it asks HEAD for the offset) */
  onRetry?: (err: Error) => void;
}

export interface TusSent {
  uploadId: string;
  url: string;
  /**
   * seconds from the last bytes written (tus-js-client's last progress event below the total, at most
   * 100 ms early: its reports are throttled) to
   * the final answer: the server completing the multipart upload and reading the object back to hash it
   */
  tailSeconds: number;
}

/**
 * The file through tus (POST /files/, then PATCHes of `chunkSize` bytes) with tus-js-client, reading
 * it as a `fs.ReadStream`, which tus-js-client slices by file ranges (nothing of it is held in memory).
 * Resolves with the upload id (the `Upload-Id` of the last answer, also the URL's last segment).
 */
export function tusUpload(baseUrl: string, apiKey: string, file: string, opts: TusOptions): Promise<TusSent> {
  return new Promise((resolve, reject) => {
    let uploadId = '';
    let lastProgress = process.hrtime.bigint();
    const upload = new tus.Upload(createReadStream(file, { highWaterMark: READ_BYTES }), {
      endpoint: `${opts.endpoint ?? baseUrl}/files/`,
      headers: { Authorization: `Bearer ${apiKey}` },
      metadata: { filename: 'bench.csv' },
      chunkSize: opts.chunkSize,
      retryDelays: opts.retryDelays ?? [],
      // no fingerprint store in Node by default: every run is a new upload
      storeFingerprintForResuming: false,
      onProgress: (sent, total) => {
        // tus-js-client reports `total` only once the answer is in: the last report below it is the end of sending
        if (sent < total) lastProgress = process.hrtime.bigint();
        opts.onProgress?.(sent, total);
      },
      onAfterResponse: (req, res) => {
        uploadId ||= res.getHeader('Upload-Id') ?? '';
        opts.onResponse?.(req.getMethod(), res.getStatus(), (name) => res.getHeader(name));
      },
      onShouldRetry: (err) => {
        // tus-js-client's own rule (a network error, 5xx, 409 or 423), the retry seen on the way
        const status = err.originalResponse?.getStatus() ?? 0;
        const retry = status < 400 || status >= 500 || status === 409 || status === 423;
        if (retry) opts.onRetry?.(err);
        return retry;
      },
      onError: reject,
      onSuccess: () => {
        if (!uploadId) reject(new Error(`tus upload ${upload.url} ended with no Upload-Id`));
        else resolve({ uploadId, url: upload.url ?? '', tailSeconds: Number(process.hrtime.bigint() - lastProgress) / 1e9 });
      },
    });
    upload.start();
  });
}

interface DirectStarted {
  uploadId: string;
  partSizeBytes: number;
  partCount: number;
  parts: { partNumber: number; url: string }[];
  completeUrl: string;
}

/**
 * Direct to storage: POST /uploads/direct {filename, size}, then every part PUT to its presigned URL
 * straight from the file (a range read stream, Content-Length known), `concurrency` at a time, then
 * POST /uploads/:id/complete with the ETags. Throws on any answer but 201 / 200 / 202.
 */
export async function directUpload(baseUrl: string, apiKey: string, file: string, size: number, concurrency: number): Promise<{ uploadId: string }> {
  const auth = { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' };
  const res = await fetch(new URL('/uploads/direct', baseUrl), { method: 'POST', headers: auth, body: JSON.stringify({ filename: 'bench.csv', size }) });
  if (res.status !== 201) throw new Error(`POST /uploads/direct answered ${res.status}: ${(await res.text()).slice(0, 500)}`);
  const started = (await res.json()) as DirectStarted;

  const etags: { partNumber: number; etag: string }[] = [];
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < started.partCount; i = next++) {
      const { partNumber, url } = started.parts[i]!;
      const start = i * started.partSizeBytes;
      const end = Math.min(size, start + started.partSizeBytes);
      etags.push({ partNumber, etag: await putRange(url, file, start, end) });
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, started.partCount) }, worker));

  const done = await fetch(new URL(started.completeUrl, baseUrl), { method: 'POST', headers: auth, body: JSON.stringify({ parts: etags }) });
  if (done.status !== 202) throw new Error(`POST ${started.completeUrl} answered ${done.status}: ${(await done.text()).slice(0, 500)}`);
  return { uploadId: started.uploadId };
}

/** PUT bytes [start, end) of `file` to a presigned URL; the ETag of the answer. */
async function putRange(url: string, file: string, start: number, end: number): Promise<string> {
  const req = (url.startsWith('https:') ? https : http).request(url, { method: 'PUT', headers: { 'content-length': String(end - start) } });
  const answer = new Promise<{ status: number; etag: string; text: string }>((resolve, reject) => {
    req.once('response', (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (s: string) => (text += s));
      res.once('end', () => resolve({ status: res.statusCode ?? 0, etag: String(res.headers.etag ?? ''), text }));
      res.once('error', reject);
    });
    req.once('error', reject);
  });
  await pipeline(createReadStream(file, { start, end: end - 1, highWaterMark: READ_BYTES }), req);
  const { status, etag, text } = await answer;
  if (status !== 200 || !etag) throw new Error(`PUT part: ${status} ${text.slice(0, 300)}`);
  return etag;
}
