// Zero-config stand-in: an S3-protocol server (s3rver) under DATA_DIR, reached through the AWS SDK.
// s3rver 3.7.1 answers AbortMultipartUpload with 405 and keeps the parts of every aborted upload on
// disk for good; this wrapper answers it itself (see abortMultipartUploads below). It also completes
// a multipart upload from whatever parts it is told of, and stores parts sent to uploads that do not
// exist; checkMultipartParts makes it refuse those as S3 does. And it never verifies a SigV4
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
 */
export async function startEmbeddedS3(opts: {
  dataDir: string;
  port: number;
  bucket: string;
  logger?: EmbeddedS3Logger;
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
  server.middleware.splice(routerAt, 0, verifyPresignedSignatures(), abortMultipartUploads(server, opts.logger));
  checkMultipartParts(server);

  await removeStaleUploads(server, directory, opts.logger);
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

const UPLOAD_ID = /^[0-9a-f]{32}$/; // s3rver's ids: 16 random bytes, hex

/**
 * AbortMultipartUpload (`DELETE /<bucket>/<key>?uploadId=…`, 204 on success, 404 NoSuchUpload), as
 * S3 answers it. It wraps s3rver's router and acts only where the router refused the request with
 * 405 — after the request's signature and bucket have been checked. The upload's parts are in
 * `<bucket>/._S3rver_uploads/<uploadId>/` with the key it was started for; removing that folder
 * is the abort. A removal that fails is logged and answered 500, so the client sees it too.
 */
function abortMultipartUploads(server: S3rver, logger: EmbeddedS3Logger | undefined): S3rverMiddleware {
  return async (ctx: S3rverContext, next) => {
    try {
      await next();
    } catch (err) {
      const uploadId = ctx.query.uploadId;
      if (!(err instanceof S3Error && err.code === 'MethodNotAllowed' && ctx.method === 'DELETE' && typeof uploadId === 'string')) {
        throw err;
      }
      const [, bucket = '', ...keyParts] = ctx.path.split('/').map(decodeURIComponent);
      const key = keyParts.join('/');
      const uploadDir = path.join(server.store.getResourcePath(bucket, undefined, 'uploads'), uploadId);
      const startedFor = UPLOAD_ID.test(uploadId) ? await readFile(path.join(uploadDir, 'key'), 'utf8').catch(() => null) : null;
      if (startedFor !== key) {
        throw new S3Error('NoSuchUpload', 'The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.', {
          UploadId: uploadId,
        });
      }
      try {
        await rm(uploadDir, { recursive: true, force: true });
      } catch (rmErr) {
        logger?.error({ err: rmErr, bucket, key, uploadId }, 'embedded S3: aborting a multipart upload failed; its parts remain');
        throw rmErr;
      }
      logger?.debug({ bucket, key, uploadId }, 'embedded S3: multipart upload aborted');
      ctx.status = 204;
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
  const uploadDir = (bucket: string, uploadId: string) => path.join(store.getResourcePath(bucket, undefined, 'uploads'), uploadId);
  const requireUpload = async (bucket: string, uploadId: string) => {
    const exists = UPLOAD_ID.test(uploadId) && (await stat(path.join(uploadDir(bucket, uploadId), 'key')).catch(() => null)) !== null;
    if (!exists) {
      throw new S3Error('NoSuchUpload', 'The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.', {
        UploadId: uploadId,
      });
    }
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

/** Removes, in every bucket, the parts of multipart uploads nobody touched for STALE_UPLOAD_MS. */
async function removeStaleUploads(server: S3rver, directory: string, logger: EmbeddedS3Logger | undefined): Promise<void> {
  const buckets = (await readdir(directory, { withFileTypes: true })).filter((entry) => entry.isDirectory());
  for (const bucket of buckets) {
    const uploadsDir = server.store.getResourcePath(bucket.name, undefined, 'uploads');
    const uploads = await readdir(uploadsDir).catch(() => [] as string[]);
    for (const uploadId of uploads) {
      const dir = path.join(uploadsDir, uploadId);
      try {
        if (Date.now() - (await stat(dir)).mtimeMs < STALE_UPLOAD_MS) continue;
        await rm(dir, { recursive: true, force: true });
        logger?.warn({ bucket: bucket.name, uploadId }, 'embedded S3: removed the parts of an upload abandoned without an abort');
      } catch (err) {
        logger?.error({ err, bucket: bucket.name, uploadId }, 'embedded S3: removing an abandoned upload failed');
      }
    }
  }
}
