// The one module that talks to S3-compatible object storage.
import type { Readable } from 'node:stream';
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsCommand,
  S3Client,
  S3ServiceException,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { Config } from '../config.ts';

/** The S3 settings of the config (endpoint null → AWS's default endpoint for the region). */
export type ObjectStoreOptions = Config['s3'];

export interface PutResult {
  key: string;
}

/** One listed object. */
export interface StoredObject {
  key: string;
  /** when the object was stored (for a multipart upload S3 reports when the upload was initiated) */
  lastModified: Date;
  sizeBytes: number;
}

// 5 MiB (S3's minimum) parts, one in flight: upload memory stays a few parts whatever the file size
// (the 200 MB upload test holds the server's RSS growth under 64 MB). Objects up to 50 GB fit in
// S3's 10,000-part limit.
const PART_SIZE = 5 * 1024 * 1024;
const QUEUE_SIZE = 1;

/** The AWS SDK client settings for `opts` (shared with other S3 clients of the store, e.g. tus's). */
export function s3ClientConfig(opts: ObjectStoreOptions): S3ClientConfig {
  return {
    ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
    region: opts.region,
    forcePathStyle: opts.forcePathStyle,
    ...(opts.accessKeyId
      ? { credentials: { accessKeyId: opts.accessKeyId, secretAccessKey: opts.secretAccessKey } }
      : {}),
    // With the default (WHEN_SUPPORTED) the SDK sends streamed bodies with aws-chunked framing,
    // which S3-compatible servers such as s3rver store verbatim — corrupting the object.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  };
}

export class ObjectStore {
  readonly bucket: string;
  private readonly client: S3Client;

  /** `options` are kept so that other clients of the same store can be made alike. */
  constructor(readonly options: ObjectStoreOptions) {
    this.bucket = options.bucket;
    this.client = new S3Client(s3ClientConfig(options));
  }

  /**
   * Streams `body` into `key` as a multipart upload. On any error the multipart upload is aborted
   * and whatever may have been completed is deleted, so a failed put leaves no visible object.
   */
  async putStream(key: string, body: Readable, contentType = 'text/csv'): Promise<PutResult> {
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key: key, Body: body, ContentType: contentType },
      partSize: PART_SIZE,
      queueSize: QUEUE_SIZE,
      leavePartsOnError: false,
    });
    // lib-storage stops reading when it fails, but does not destroy the source: do it here so the
    // producer (the HTTP request) stops too.
    try {
      await upload.done();
    } catch (err) {
      body.destroy();
      await upload.abort().catch(() => {});
      await this.delete(key).catch(() => {});
      throw err;
    }
    return { key };
  }

  async getStream(key: string): Promise<{ body: Readable; size: number }> {
    const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
    return { body: res.Body as Readable, size: Number(res.ContentLength ?? 0) };
  }

  /** Size of the object, or null when it does not exist. */
  async head(key: string): Promise<number | null> {
    try {
      const res = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return Number(res.ContentLength ?? 0);
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  /**
   * The objects whose key starts with `prefix`, one page at a time in key order (`pageSize` keys at
   * most per page; S3 caps it at 1,000). Only the current page is held in memory, however many
   * objects the bucket holds. An object listed without a date counts as stored now (never "old").
   * Errors of the store are thrown.
   *
   * Pages by key (ListObjects with Marker = the last key seen), which S3, MinIO and s3rver all
   * serve. Not ListObjectsV2's continuation token: s3rver 3.7.1 builds that token with DES, which
   * OpenSSL 3 (Node ≥ 17) refuses, so every truncated V2 listing of the embedded store fails with 500.
   */
  async *list(prefix: string, pageSize = 1000): AsyncGenerator<StoredObject[]> {
    let marker: string | undefined;
    for (;;) {
      const res = await this.client.send(
        new ListObjectsCommand({ Bucket: this.bucket, Prefix: prefix, MaxKeys: pageSize, Marker: marker }),
      );
      const page = (res.Contents ?? [])
        .filter((o) => o.Key !== undefined)
        .map((o) => ({ key: o.Key!, lastModified: o.LastModified ?? new Date(), sizeBytes: Number(o.Size ?? 0) }));
      if (page.length > 0) yield page;
      if (!res.IsTruncated || page.length === 0) return;
      marker = page.at(-1)!.key;
    }
  }

  /** Deletes `key`; deleting a key that does not exist succeeds (S3 semantics). */
  async delete(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
  }

  async ensureBucket(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch (err) {
      if (!isNotFound(err)) throw err;
      await this.client.send(new CreateBucketCommand({ Bucket: this.bucket }));
    }
  }

  /** Readiness probe: the bucket answers. */
  async ping(): Promise<void> {
    await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
  }

  destroy(): void {
    this.client.destroy();
  }
}

function isNotFound(err: unknown): boolean {
  if (err instanceof S3ServiceException) {
    return err.$metadata.httpStatusCode === 404 || err.name === 'NotFound' || err.name === 'NoSuchKey';
  }
  return false;
}

export function objectKeyFor(tenantId: string, uploadId: string): string {
  return `uploads/${tenantId}/${uploadId}.csv`;
}
