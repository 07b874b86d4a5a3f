// Zero-config stand-in: an S3-protocol server (s3rver) under DATA_DIR, reached through the AWS SDK.
// s3rver 3.7.1 answers AbortMultipartUpload with 405 and keeps the parts of every aborted upload on
// disk for good; this wrapper answers it itself, and ListParts and ListMultipartUploads too (see
// multipartOperations below; @tus/s3-store needs them: src/storage/embedded-s3-multipart.ts). It also
// completes a multipart upload from whatever parts it is told of, and stores parts sent to uploads that
// do not exist; checkMultipartParts makes it refuse those as S3 does. And it never verifies a SigV4
// signature: presigned URLs are checked by verifyPresignedSignatures (embedded-s3-presigned.ts).
import { mkdir, readdir, readFile, rm, stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import S3rver, { type S3rverContext, type S3rverMiddleware } from 's3rver';
import S3Error from 's3rver/lib/models/error.js';
import type { Logger } from '../logger.ts';
import { explainListenError } from '../startup-error.ts';
import { verifyPresignedSignatures } from './embedded-s3-presigned.ts';
import { bucketAndKey, keyOfUpload, listMultipartUploads, listParts, noSuchUpload, patchPutPart, uploadsDir } from './embedded-s3-multipart.ts';

export interface EmbeddedS3Handle {
  endpoint: string;
  /** the folder holding the buckets (and, per bucket, the parts of multipart uploads in progress) */
  directory: string;
  stop(): Promise<void>;
}

type EmbeddedS3Logger = Pick<Logger, 'warn' | 'error' | 'debug'>;

/** Incomplete multipart uploads untouched this long are removed at start (what S3's lifecycle rule
 * AbortIncompleteMultipartUpload does): their uploader died without aborting them. */
const STALE_UPLOAD_MS = 60 * 60 * 1000;

/**
 * Starts s3rver on 127.0.0.1:`port` (0 → any free port) with `bucket` created, storing under
 * `<dataDir>/s3`. Throws a StartupError naming EMBEDDED_S3_PORT when the port is taken.
 * `staleUploadMs` (default one hour, never less): multipart uploads untouched this long are removed
 * at start — give it the tus expiry, or a paused resumable upload would lose its parts on a restart.
 */
export async function startEmbeddedS3(opts: {
  dataDir: string;
  port: number;
  bucket: string;
  logger?: EmbeddedS3Logger;
  staleUploadMs?: number;
}): Promise<EmbeddedS3Handle> {
  const directory = path.join(opts.dataDir, 's3');
  await mkdir(directory, { recursive: true });
  const server = new S3rver({
    silent: true,
    directory,
    // Path-style only: bucket names never become hostnames on loopback.
    vhostBuckets: false,
    configureBuckets: [{ name: opts.bucket }],
  });
  const routerAt = server.middleware.findIndex((mw) => mw.router !== undefined);
  if (routerAt < 0) throw new Error('s3rver: router middleware not found (is s3rver still 3.7.x?)');
  server.middleware.splice(routerAt, 0, verifyPresignedSignatures(), multipartOperations(server, opts.logger));
  // Order matters: the checks wrap the part writer that answers only once the part is on disk.
  patchPutPart(server);
  checkMultipartParts(server);

  await removeStaleUploads(server, directory, Math.max(STALE_UPLOAD_MS, opts.staleUploadMs ?? 0), opts.logger);
  await server.configureBuckets();
  // What s3rver.run() does, minus its listen, which emits a taken port as an unhandled 'error' event.
  const httpServer = createServer(server.callback());
  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', (err) => reject(explainListenError(err, 'EMBEDDED_S3_PORT', opts.port)));
    httpServer.listen(opts.port, '127.0.0.1', () => resolve());
  });
  const { port } = httpServer.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    directory,
    stop: () => new Promise<void>((resolve, reject) => httpServer.close((err) => (err ? reject(err) : resolve()))),
  };
}

/**
 * Wraps s3rver's router and acts only where the router refused the request — after the request's
 * signature and bucket have been checked:
 * - AbortMultipartUpload (`DELETE /<bucket>/<key>?uploadId=…`, 204; 404 NoSuchUpload), as S3 answers
 *   it: removing the upload's folder (see embedded-s3-multipart.ts) is the abort. A removal that
 *   fails is logged and answered 500, so the client sees it too.
 * - ListParts (`GET /<bucket>/<key>?uploadId=…`) and ListMultipartUploads (`GET /<bucket>?uploads`).
 */
function multipartOperations(server: S3rver, logger: EmbeddedS3Logger | undefined): S3rverMiddleware {
  return async (ctx: S3rverContext, next) => {
    try {
      await next();
    } catch (err) {
      if (!(err instanceof S3Error)) throw err;
      const uploadId = ctx.query.uploadId;
      if (err.code === 'MethodNotAllowed' && typeof uploadId === 'string') {
        if (ctx.method === 'GET') return listParts(server, ctx, uploadId);
        if (ctx.method === 'DELETE') return abortUpload(server, ctx, uploadId, logger);
      }
      const { bucket, key } = bucketAndKey(ctx);
      if (err.code === 'NotImplemented' && ctx.method === 'GET' && key === '' && 'uploads' in ctx.query) {
        return listMultipartUploads(server, ctx, bucket);
      }
      throw err;
    }
  };
}

/** S3's smallest part but the last (https://docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html) */
const MIN_PART_BYTES = 5 * 1024 * 1024;

/**
 * What S3 refuses and s3rver 3.7.1 takes, refused as S3 does — so a client of direct uploads meets
 * the embedded store's errors where it would meet S3's:
 * - UploadPart to an upload that does not exist (never started, aborted, completed): s3rver creates
 *   its folder and stores the part for good; S3 answers 404 NoSuchUpload.
 * - CompleteMultipartUpload: s3rver never compares ETags, takes parts out of order or under 5 MiB,
 *   and fails with 500 on a part never uploaded or an upload that does not exist. S3 answers 400
 *   InvalidPart (a part not uploaded, or an ETag that is not the part's), InvalidPartOrder,
 *   EntityTooSmall, and 404 NoSuchUpload.
 * Both checks wrap s3rver's store methods, so they run after the request's signature and bucket
 * were checked (by its router), with the parts as its controller parsed them (ETags unquoted).
 */
function checkMultipartParts(server: S3rver): void {
  const store = server.store;
  const uploadDir = (bucket: string, uploadId: string) => path.join(uploadsDir(server, bucket), uploadId);
  const requireUpload = async (bucket: string, uploadId: string) => {
    if ((await keyOfUpload(server, bucket, uploadId)) === null) throw noSuchUpload(uploadId);
  };

  const putPart = store.putPart.bind(store);
  store.putPart = async (bucket, uploadId, partNumber, content) => {
    try {
      await requireUpload(bucket, String(uploadId));
    } catch (err) {
      content.resume(); // read and drop the body, so the client gets the answer rather than a reset
      throw err;
    }
    return putPart(bucket, uploadId, partNumber, content);
  };

  const complete = store.putObjectMultipart.bind(store);
  store.putObjectMultipart = async (bucket, uploadId, parts) => {
    await requireUpload(bucket, String(uploadId));
    const dir = uploadDir(bucket, String(uploadId));
    for (const [i, part] of parts.entries()) {
      if (i > 0 && part.number <= parts[i - 1]!.number) {
        throw new S3Error('InvalidPartOrder', 'The list of parts was not in ascending order. The parts list must be specified in order by part number.');
      }
      const md5 = await readFile(path.join(dir, `${part.number}.md5`), 'utf8').catch(() => null);
      if (md5 === null || md5 !== part.etag) {
        throw new S3Error('InvalidPart', 'One or more of the specified parts could not be found. The part might not have been uploaded, or the specified entity tag might not have matched the part\'s entity tag.', {
          UploadId: String(uploadId),
          PartNumber: String(part.number),
          ETag: part.etag,
        });
      }
    }
    // Sizes once every part is known to be there (a part never uploaded is InvalidPart whatever its place).
    for (const part of parts.slice(0, -1)) {
      if ((await stat(path.join(dir, String(part.number)))).size < MIN_PART_BYTES) {
        throw new S3Error('EntityTooSmall', 'Your proposed upload is smaller than the minimum allowed object size.', {
          PartNumber: String(part.number),
        });
      }
    }
    return complete(bucket, uploadId, parts);
  };
}


async function abortUpload(server: S3rver, ctx: S3rverContext, uploadId: string, logger: EmbeddedS3Logger | undefined): Promise<void> {
  const { bucket, key } = bucketAndKey(ctx);
  if ((await keyOfUpload(server, bucket, uploadId)) !== key) throw noSuchUpload(uploadId);
  const uploadDir = path.join(uploadsDir(server, bucket), uploadId);
  try {
    await rm(uploadDir, { recursive: true, force: true });
  } catch (rmErr) {
    logger?.error({ err: rmErr, bucket, key, uploadId }, 'embedded S3: aborting a multipart upload failed; its parts remain');
    throw rmErr;
  }
  logger?.debug({ bucket, key, uploadId }, 'embedded S3: multipart upload aborted');
  ctx.status = 204;
}

/** Removes, in every bucket, the parts of multipart uploads nobody touched for `staleMs`. */
async function removeStaleUploads(server: S3rver, directory: string, staleMs: number, logger: EmbeddedS3Logger | undefined): Promise<void> {
  const buckets = (await readdir(directory, { withFileTypes: true })).filter((entry) => entry.isDirectory());
  for (const bucket of buckets) {
    const uploadsRoot = uploadsDir(server, bucket.name);
    const uploads = await readdir(uploadsRoot).catch(() => [] as string[]);
    for (const uploadId of uploads) {
      const dir = path.join(uploadsRoot, uploadId);
      try {
        if (Date.now() - (await stat(dir)).mtimeMs < staleMs) continue;
        await rm(dir, { recursive: true, force: true });
        logger?.warn({ bucket: bucket.name, uploadId }, 'embedded S3: removed the parts of an upload abandoned without an abort');
      } catch (err) {
        logger?.error({ err, bucket: bucket.name, uploadId }, 'embedded S3: removing an abandoned upload failed');
      }
    }
  }
}
