// Zero-config stand-in: an S3-protocol server (s3rver) under DATA_DIR, reached through the AWS SDK.
// s3rver 3.7.1 answers AbortMultipartUpload with 405 and keeps the parts of every aborted upload on
// disk for good; this wrapper answers it itself (see abortMultipartUploads below).
import { mkdir, readdir, readFile, rm, stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import S3rver, { type S3rverContext, type S3rverMiddleware } from 's3rver';
import S3Error from 's3rver/lib/models/error.js';
import type { Logger } from '../logger.ts';
import { explainListenError } from '../startup-error.ts';

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
  server.middleware.splice(routerAt, 0, abortMultipartUploads(server, opts.logger));

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
