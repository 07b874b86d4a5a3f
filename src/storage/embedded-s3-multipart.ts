// The multipart operations s3rver 3.7.1 lacks or gets wrong, answered from its own files on disk:
// ListParts and ListMultipartUploads (its router answers 405 / 501), and UploadPart (its version
// answers before the part's file is flushed, so a listing right after could see it short).
// Layout of an upload in progress (s3rver's lib/stores/filesystem.js):
//   <bucket>/._S3rver_uploads/<uploadId>/key        the key the upload was started for
//   <bucket>/._S3rver_uploads/<uploadId>/<n>        part n's bytes
//   <bucket>/._S3rver_uploads/<uploadId>/<n>.md5    its MD5 (hex), written once the part is whole
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type S3rver from 's3rver';
import type { S3rverContext } from 's3rver';
import S3Error from 's3rver/lib/models/error.js';

const UPLOAD_ID = /^[0-9a-f]{32}$/; // s3rver's ids: 16 random bytes, hex
const NO_SUCH_UPLOAD =
  'The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.';

/** `<bucket>/._S3rver_uploads` of this server. */
export function uploadsDir(server: S3rver, bucket: string): string {
  return server.store.getResourcePath(bucket, undefined, 'uploads');
}

/** The key upload `uploadId` of `bucket` was started for, or null when there is no such upload. */
export async function keyOfUpload(server: S3rver, bucket: string, uploadId: string): Promise<string | null> {
  if (!UPLOAD_ID.test(uploadId)) return null;
  return readFile(path.join(uploadsDir(server, bucket), uploadId, 'key'), 'utf8').catch(() => null);
}

/** S3's NoSuchUpload (404). */
export function noSuchUpload(uploadId: string): S3Error {
  return new S3Error('NoSuchUpload', NO_SUCH_UPLOAD, { UploadId: uploadId });
}

/** Splits a path-style request path into bucket and key. */
export function bucketAndKey(ctx: S3rverContext): { bucket: string; key: string } {
  const [, bucket = '', ...keyParts] = ctx.path.split('/').map(decodeURIComponent);
  return { bucket, key: keyParts.join('/') };
}

function intParam(ctx: S3rverContext, name: string, fallback: number, max: number): number {
  const raw = ctx.query[name];
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (typeof raw !== 'string' || !Number.isSafeInteger(n) || n < 0) {
    throw new S3Error('InvalidArgument', `${name} must be a non-negative integer`, { ArgumentName: name, ArgumentValue: String(raw) });
  }
  return Math.min(n, max);
}

/**
 * ListParts (`GET /<bucket>/<key>?uploadId=…`), per the S3 API reference: the parts whose upload has
 * finished (their `.md5` is written last), in part-number order, after `part-number-marker`, at most
 * `max-parts` (default and cap 1,000), with IsTruncated/NextPartNumberMarker. NoSuchUpload (404)
 * when the id is unknown or was started for another key.
 */
export async function listParts(server: S3rver, ctx: S3rverContext, uploadId: string): Promise<void> {
  const { bucket, key } = bucketAndKey(ctx);
  if ((await keyOfUpload(server, bucket, uploadId)) !== key) throw noSuchUpload(uploadId);
  const marker = intParam(ctx, 'part-number-marker', 0, 10_000);
  const maxParts = intParam(ctx, 'max-parts', 1000, 1000);
  const dir = path.join(uploadsDir(server, bucket), uploadId);
  const names = await readdir(dir).catch(() => [] as string[]);
  const numbers = names
    .map((name) => /^(\d+)\.md5$/.exec(name)?.[1])
    .filter((n): n is string => n !== undefined)
    .map(Number)
    .filter((n) => n > marker)
    .sort((a, b) => a - b);
  const page = numbers.slice(0, maxParts);
  const parts = [];
  for (const n of page) {
    const [info, md5] = await Promise.all([stat(path.join(dir, String(n))), readFile(path.join(dir, `${n}.md5`), 'utf8')]);
    parts.push({ PartNumber: n, LastModified: info.mtime.toISOString(), ETag: JSON.stringify(md5.trim()), Size: info.size });
  }
  const truncated = numbers.length > page.length;
  ctx.body = {
    ListPartsResult: {
      '@': { xmlns: 'http://s3.amazonaws.com/doc/2006-03-01/' },
      Bucket: bucket,
      Key: key,
      UploadId: uploadId,
      PartNumberMarker: marker,
      ...(truncated ? { NextPartNumberMarker: page.at(-1) } : {}),
      MaxParts: maxParts,
      IsTruncated: truncated,
      StorageClass: 'STANDARD',
      Part: parts,
    },
  };
}

/**
 * ListMultipartUploads (`GET /<bucket>?uploads`), per the S3 API reference: the uploads in progress
 * ordered by key then upload id, after `key-marker`/`upload-id-marker`, filtered by `prefix`, at most
 * `max-uploads` (default and cap 1,000). `Initiated` is when the upload's `key` file was written.
 * Part of what an S3 lifecycle rule or an expiry sweep (@tus/s3-store's deleteExpired) needs.
 */
export async function listMultipartUploads(server: S3rver, ctx: S3rverContext, bucket: string): Promise<void> {
  const text = (name: string) => (typeof ctx.query[name] === 'string' ? (ctx.query[name] as string) : '');
  const prefix = text('prefix');
  const keyMarker = text('key-marker');
  const uploadIdMarker = text('upload-id-marker');
  const maxUploads = intParam(ctx, 'max-uploads', 1000, 1000);
  const dir = uploadsDir(server, bucket);
  const uploads: { key: string; uploadId: string; initiated: Date }[] = [];
  for (const uploadId of await readdir(dir).catch(() => [] as string[])) {
    const keyFile = path.join(dir, uploadId, 'key');
    const [key, info] = await Promise.all([readFile(keyFile, 'utf8').catch(() => null), stat(keyFile).catch(() => null)]);
    if (key === null || info === null || !key.startsWith(prefix)) continue;
    if (key < keyMarker || (key === keyMarker && (uploadIdMarker === '' || uploadId <= uploadIdMarker))) continue;
    uploads.push({ key, uploadId, initiated: info.mtime });
  }
  uploads.sort((a, b) => (a.key === b.key ? cmp(a.uploadId, b.uploadId) : cmp(a.key, b.key)));
  const page = uploads.slice(0, maxUploads);
  const truncated = uploads.length > page.length;
  const last = page.at(-1);
  ctx.body = {
    ListMultipartUploadsResult: {
      '@': { xmlns: 'http://s3.amazonaws.com/doc/2006-03-01/' },
      Bucket: bucket,
      KeyMarker: keyMarker,
      UploadIdMarker: uploadIdMarker,
      ...(truncated && last ? { NextKeyMarker: last.key, NextUploadIdMarker: last.uploadId } : {}),
      Prefix: prefix,
      MaxUploads: maxUploads,
      IsTruncated: truncated,
      Upload: page.map((u) => ({ Key: u.key, UploadId: u.uploadId, Initiated: u.initiated.toISOString(), StorageClass: 'STANDARD' })),
    },
  };
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * s3rver's store.putPart, redone so it resolves only once the part's file is flushed (s3rver's own
 * resolves when the bytes have passed its hash, before the file write ends) and leaves no half part
 * behind when the request is cut. Same files and return shape as the original.
 */
export function patchPutPart(server: S3rver): void {
  const store = server.store as S3rver['store'] & {
    putPart(bucket: string, uploadId: string, partNumber: number | string, content: Readable): Promise<{ size: number; md5: string }>;
  };
  store.putPart = async (bucket, uploadId, partNumber, content) => {
    const partPath = path.join(uploadsDir(server, bucket), uploadId, String(partNumber));
    await mkdir(path.dirname(partPath), { recursive: true });
    const md5 = createHash('md5');
    let size = 0;
    const count = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        md5.update(chunk);
        size += chunk.length;
        cb(null, chunk);
      },
    });
    // A part re-sent under the same number replaces the old one: it stops being listed until whole.
    await rm(`${partPath}.md5`, { force: true });
    try {
      await pipeline(content, count, createWriteStream(partPath));
    } catch (err) {
      await rm(partPath, { force: true });
      throw err;
    }
    const digest = md5.digest('hex');
    await writeFile(`${partPath}.md5`, digest);
    return { size, md5: digest };
  };
}
