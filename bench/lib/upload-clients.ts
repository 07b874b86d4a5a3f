// The clients of bench/upload.ts, one per way a file can reach storage. Each sends the whole file and
// resolves with the object key it ended under, or throws; the bench times it and checks the object.
import { randomBytes, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import http from 'node:http';
import { pipeline } from 'node:stream/promises';
import { S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { ObjectStoreOptions } from '../../src/storage/object-store.ts';

/** Bytes per read of the file by every client (the chunk a browser or curl would send about). */
const READ_BYTES = 256 * 1024;

export interface Sent {
  /** the key of the stored object */
  key: string;
  /** the service's upload id, when the file went through the service */
  uploadId?: string;
  /** a tus upload: @tus/s3-store's `<key>.info` and `<key>.part` sit beside the object */
  tus?: boolean;
  /** what the client saw of the service's part of the time, printed under the table */
  note?: string;
}

/**
 * `POST /upload` with the file as a streamed `multipart/form-data` body (Content-Length known, as
 * curl -F sends it). Throws unless the answer is 202.
 */
export async function postMultipart(baseUrl: string, apiKey: string, file: string, size: number): Promise<Sent> {
  const boundary = `----stream-api-bench-${randomBytes(8).toString('hex')}`;
  const head = Buffer.from(
    `--${boundary}\r\ncontent-disposition: form-data; name="file"; filename="bench.csv"\r\ncontent-type: text/csv\r\n\r\n`,
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const req = http.request(new URL('/upload', baseUrl), {
    method: 'POST',
    agent: false,
    headers: {
      authorization: `Bearer ${apiKey}`,
      'content-type': `multipart/form-data; boundary=${boundary}`,
      'content-length': String(head.length + size + tail.length),
    },
  });
  const answer = new Promise<{ status: number; text: string }>((resolve, reject) => {
    req.once('response', (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (s: string) => (text += s));
      res.once('end', () => resolve({ status: res.statusCode ?? 0, text }));
      res.once('error', reject);
    });
    req.once('error', reject);
  });
  async function* body() {
    yield head;
    yield* createReadStream(file, { highWaterMark: READ_BYTES });
    yield tail;
  }
  await pipeline(body, req);
  const { status, text } = await answer;
  if (status !== 202) throw new Error(`POST /upload answered ${status}: ${text.slice(0, 500)}`);
  const { uploadId } = JSON.parse(text) as { uploadId: string };
  return { key: '', uploadId }; // the bench looks the key up by the upload id
}

/**
 * The baseline: the file straight into the store with the AWS SDK's own streaming uploader
 * (@aws-sdk/lib-storage Upload with its defaults, as a client would use it), under `bench/<uuid>`.
 */
export async function sdkUpload(s3: ObjectStoreOptions, file: string): Promise<Sent> {
  const client = new S3Client({
    ...(s3.endpoint ? { endpoint: s3.endpoint } : {}),
    region: s3.region,
    forcePathStyle: s3.forcePathStyle,
    ...(s3.accessKeyId ? { credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey } } : {}),
    // as the service's client: s3rver would store aws-chunked framing verbatim (see src/storage/object-store.ts)
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const key = `bench/${randomUUID()}.csv`;
  try {
    await new Upload({
      client,
      params: { Bucket: s3.bucket, Key: key, Body: createReadStream(file, { highWaterMark: READ_BYTES }), ContentType: 'text/csv' },
    }).done();
  } finally {
    client.destroy();
  }
  return { key };
}
