// The embedded S3 server (s3rver behind our wrapper) aborts multipart uploads as S3 does: an upload
// the client gives up on — or one aborted through the AWS SDK — leaves no part on disk. And it
// refuses the multipart requests S3 refuses (ETags, order, part sizes, unknown uploads).
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm, utimes } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedS3, type EmbeddedS3Handle } from '../../src/storage/embedded-s3.ts';
import { createTestEnv, startApi } from '../helpers/env.ts';
import { generateEvents } from '../helpers/generate.ts';
import { upload } from '../helpers/http.ts';

const BUCKET = 'stream-api';
const PART = Buffer.alloc(5 * 1024 * 1024, 'a');
let dir: string;
let s3: EmbeddedS3Handle;
let client: S3Client;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'stream-api-s3-'));
  s3 = await startEmbeddedS3({ dataDir: dir, port: 0, bucket: BUCKET });
  client = new S3Client({
    endpoint: s3.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
});
afterAll(async () => {
  client?.destroy();
  await s3?.stop();
  await rm(dir, { recursive: true, force: true });
});

/** Every file s3rver keeps for multipart uploads in progress, under any bucket. */
async function partFiles(root: string): Promise<string[]> {
  const all = await readdir(root, { recursive: true, withFileTypes: true });
  return all.filter((e) => e.isFile() && path.join(e.parentPath, e.name).includes('._S3rver_uploads')).map((e) => path.join(e.parentPath, e.name));
}

async function startUpload(key: string, parts: number, body: (n: number) => Buffer = () => PART): Promise<string> {
  const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key }));
  for (let n = 1; n <= parts; n++) {
    await client.send(new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId, PartNumber: n, Body: body(n) }));
  }
  return UploadId!;
}

/** The S3 error name a sent command fails with (or 'ok'). */
async function outcome(sent: Promise<unknown>): Promise<string> {
  return sent.then(
    () => 'ok',
    (err: unknown) => (err instanceof S3ServiceException ? err.name : String(err)),
  );
}

describe('embedded S3: AbortMultipartUpload', () => {
  it('answers success through the AWS SDK and removes the parts; a second abort is NoSuchUpload', async () => {
    const key = 'uploads/t/abort-direct.csv';
    const uploadId = await startUpload(key, 2);
    expect((await partFiles(s3.directory)).length).toBeGreaterThanOrEqual(2);

    const res = await client.send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: key, UploadId: uploadId }));
    expect(res.$metadata.httpStatusCode).toBe(204);
    expect(await partFiles(s3.directory)).toEqual([]);

    const again = await client.send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: key, UploadId: uploadId })).catch((e: unknown) => e);
    expect(again).toBeInstanceOf(S3ServiceException);
    expect((again as S3ServiceException).name).toBe('NoSuchUpload');
  });

  it('refuses to abort an upload under another key or a made-up id, and keeps its parts', async () => {
    const key = 'uploads/t/kept.csv';
    const uploadId = await startUpload(key, 1);
    for (const input of [
      { Key: 'uploads/t/other.csv', UploadId: uploadId },
      { Key: key, UploadId: '../../../etc' },
    ]) {
      const err = await client.send(new AbortMultipartUploadCommand({ Bucket: BUCKET, ...input })).catch((e: unknown) => e);
      expect((err as S3ServiceException).name).toBe('NoSuchUpload');
    }
    expect((await partFiles(s3.directory)).length).toBeGreaterThan(0);
    await client.send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: key, UploadId: uploadId }));
    expect(await partFiles(s3.directory)).toEqual([]);
  });

  it('an upload the client abandons after several 5 MiB parts leaves no part on disk', async () => {
    const t = await createTestEnv({ S3_ENDPOINT: s3.endpoint });
    const api = await startApi(t);
    const file = path.join(dir, 'abandoned.csv');
    try {
      await generateEvents(120_000, file); // ~21 MB
      const { key } = await t.newTenantKey();
      // Watch the store while the upload runs, so the test knows parts were really written.
      let mostParts = 0;
      const watch = setInterval(() => {
        partFiles(s3.directory).then((files) => (mostParts = Math.max(mostParts, files.filter((f) => /\/\d+$/.test(f)).length)), () => {});
      }, 50);
      try {
        await expect(upload(api.url, key, { file: { path: file }, abortAfterBytes: 17 * 1024 * 1024 })).rejects.toThrow();
        const until = Date.now() + 15_000;
        while ((await partFiles(s3.directory)).length > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
      } finally {
        clearInterval(watch);
      }
      expect(mostParts).toBeGreaterThanOrEqual(2);
      expect(await partFiles(s3.directory)).toEqual([]);
      expect(await t.listObjects('uploads/')).toEqual([]);
    } finally {
      await api.close();
      await t.close();
    }
  });

  it('removes at start the parts of uploads abandoned without an abort (untouched for an hour)', async () => {
    const stale = await startUpload('uploads/t/crashed.csv', 1);
    const fresh = await startUpload('uploads/t/in-progress.csv', 1);
    await s3.stop();
    const staleDir = (await partFiles(s3.directory)).map((f) => path.dirname(f)).find((d) => d.endsWith(stale))!;
    const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
    await utimes(staleDir, twoHoursAgo, twoHoursAgo);

    s3 = await startEmbeddedS3({ dataDir: dir, port: Number(new URL(s3.endpoint).port), bucket: BUCKET });
    const left = await partFiles(s3.directory);
    expect(left.some((f) => f.includes(stale))).toBe(false);
    expect(left.some((f) => f.includes(fresh))).toBe(true);
    await client.send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: 'uploads/t/in-progress.csv', UploadId: fresh }));
  });
});

describe('embedded S3: what S3 refuses in a multipart upload, refused alike', () => {
  const md5 = (b: Buffer) => `"${createHash('md5').update(b).digest('hex')}"`;
  const complete = (key: string, uploadId: string, parts: { PartNumber: number; ETag: string }[]) =>
    client.send(new CompleteMultipartUploadCommand({ Bucket: BUCKET, Key: key, UploadId: uploadId, MultipartUpload: { Parts: parts } }));
  const LAST = Buffer.from('the last part may be short\n');

  it('CompleteMultipartUpload: a wrong ETag or a part never uploaded → InvalidPart; out of order → InvalidPartOrder; the upload survives them', async () => {
    const key = 'uploads/t/complete-checked.csv';
    const uploadId = await startUpload(key, 2, (n) => (n === 1 ? PART : LAST));
    const good = [{ PartNumber: 1, ETag: md5(PART) }, { PartNumber: 2, ETag: md5(LAST) }];
    expect(await outcome(complete(key, uploadId, [good[0]!, { PartNumber: 2, ETag: md5(PART) }]))).toBe('InvalidPart');
    expect(await outcome(complete(key, uploadId, [...good, { PartNumber: 3, ETag: md5(LAST) }]))).toBe('InvalidPart');
    expect(await outcome(complete(key, uploadId, [good[1]!, good[0]!]))).toBe('InvalidPartOrder');
    expect(await outcome(complete(key, uploadId, good))).toBe('ok');
    const head = await client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }));
    expect(head.ContentLength).toBe(PART.length + LAST.length);
    // Completed: the upload is gone, as in S3.
    expect(await outcome(complete(key, uploadId, good))).toBe('NoSuchUpload');
  });

  it('CompleteMultipartUpload: a part but the last under 5 MiB → EntityTooSmall; an unknown upload → NoSuchUpload', async () => {
    const key = 'uploads/t/too-small.csv';
    const uploadId = await startUpload(key, 2, () => LAST);
    expect(await outcome(complete(key, uploadId, [{ PartNumber: 1, ETag: md5(LAST) }, { PartNumber: 2, ETag: md5(LAST) }]))).toBe('EntityTooSmall');
    expect(await outcome(complete(key, 'f'.repeat(32), [{ PartNumber: 1, ETag: md5(LAST) }]))).toBe('NoSuchUpload');
    await client.send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: key, UploadId: uploadId }));
  });

  it('UploadPart to an upload that does not exist (aborted, or made up) → NoSuchUpload, and nothing is written', async () => {
    const key = 'uploads/t/aborted-then-put.csv';
    const uploadId = await startUpload(key, 1, () => LAST);
    await client.send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: key, UploadId: uploadId }));
    for (const id of [uploadId, 'f'.repeat(32), '../../escape']) {
      expect(await outcome(client.send(new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId: id, PartNumber: 1, Body: LAST })))).toBe('NoSuchUpload');
    }
    expect(await partFiles(s3.directory)).toEqual([]);
  });
});

describe('embedded S3: presigned URLs are verified (s3rver checks no SigV4 signature)', () => {
  const BODY = Buffer.from('a,b\n1,2\n');
  const put = (url: string) => fetch(url, { method: 'PUT', body: new Uint8Array(BODY) });

  it('a presigned part URL works as signed; any change to it → 403 SignatureDoesNotMatch and nothing stored', async () => {
    const key = 'uploads/t/presigned a+b ü.csv'; // characters the path encoding must agree on
    const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key }));
    const other = await client.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: 'uploads/t/other.csv' }));
    const url = await getSignedUrl(client, new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId, PartNumber: 1 }), { expiresIn: 600 });
    const edit = (change: (u: URL) => void) => {
      const u = new URL(url);
      change(u);
      return u.toString();
    };
    const tampered = [
      edit((u) => u.searchParams.set('partNumber', '2')),
      edit((u) => u.searchParams.set('uploadId', other.UploadId!)),
      edit((u) => (u.pathname = `/${BUCKET}/uploads/t/other.csv`)),
      edit((u) => u.searchParams.set('X-Amz-Expires', '604800')),
      edit((u) => u.searchParams.set('X-Amz-Signature', '0'.repeat(64))),
    ];
    for (const bad of tampered) {
      const res = await put(bad);
      expect([res.status, await res.text()], bad).toEqual([403, expect.stringContaining('SignatureDoesNotMatch')]);
    }
    expect((await partFiles(s3.directory)).filter((f) => /\/\d+$/.test(f))).toEqual([]);

    const res = await put(url);
    expect(res.status).toBe(200);
    expect(res.headers.get('etag')).toBe(`"${createHash('md5').update(BODY).digest('hex')}"`);
    await client.send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: key, UploadId }));
    await client.send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: 'uploads/t/other.csv', UploadId: other.UploadId }));
  });

  it('a presigned GET is served as signed too', async () => {
    const key = 'uploads/t/readable.csv';
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: BODY }));
    const url = await getSignedUrl(client, new GetObjectCommand({ Bucket: BUCKET, Key: key }), { expiresIn: 60 });
    expect(await (await fetch(url)).text()).toBe(BODY.toString());
    expect((await fetch(url.replace('readable', 'unreadable'))).status).toBe(403);
  });
});
