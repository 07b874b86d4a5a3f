// The one module that talks to S3-compatible object storage.
import { pipeline, type Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsCommand,
  S3Client,
  S3ServiceException,
  UploadPartCommand,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { Config } from '../config.ts';
import { PartBudget, PartGate } from './part-budget.ts';

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

/** A part of a multipart upload as the client reports it: its number (1–10,000) and the ETag the store answered its PUT with. */
export interface CompletedPart {
  partNumber: number;
  etag: string;
}

/**
 * Why the store refused to complete a multipart upload: `invalid_part` (a part not uploaded, an ETag
 * that is not the part's, parts out of order, a part but the last under 5 MiB — S3's InvalidPart,
 * InvalidPartOrder, EntityTooSmall) or `no_such_upload` (aborted, expired, or already completed).
 */
export type CompleteRefusal = { reason: 'invalid_part' | 'no_such_upload'; message: string };

const COMPLETE_REFUSALS: Record<string, CompleteRefusal['reason']> = {
  InvalidPart: 'invalid_part',
  InvalidPartOrder: 'invalid_part',
  EntityTooSmall: 'invalid_part',
  NoSuchUpload: 'no_such_upload',
};

/** How putStream cuts a stream into parts (the `uploads` settings of the config). */
export type UploadTuning = Config['uploads'];

/** S3's smallest part, one at a time: what a store gets when its user sets nothing. */
const SERIAL: UploadTuning = { partSizeBytes: 5 * 1024 * 1024, partsInFlight: 1, bufferBytes: 0 };

/**
 * The AWS SDK client settings for `opts` (shared with other S3 clients of the store, e.g. tus's),
 * addressed at `endpoint` (default: the store's own; the public endpoint for presigned URLs).
 */
export function s3ClientConfig(opts: ObjectStoreOptions, endpoint: string | null = opts.endpoint): S3ClientConfig {
  return {
    ...(endpoint ? { endpoint } : {}),
    region: opts.region,
    forcePathStyle: opts.forcePathStyle,
    ...(opts.accessKeyId ? { credentials: { accessKeyId: opts.accessKeyId, secretAccessKey: opts.secretAccessKey } } : {}),
    // With the default (WHEN_SUPPORTED) the SDK sends streamed bodies with aws-chunked framing,
    // which S3-compatible servers such as s3rver store verbatim — corrupting the object; and it
    // signs a CRC32 of the empty body into presigned part URLs, so S3 refuses every part sent to them.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  };
}

export class ObjectStore {
  readonly bucket: string;
  private readonly client: S3Client;
  /** signs URLs for clients: the same store, named by the address they reach it at */
  private readonly publicClient: S3Client;

  private readonly tuning: UploadTuning;
  /** Memory for the parts of this store's uploads beyond each one's first (see PartBudget). */
  readonly partBudget: PartBudget;

  /**
   * `options` are kept so that other clients of the same store can be made alike. `tuning`: how
   * putStream cuts streams into parts and how many it sends at once; by default one 5 MiB part at a
   * time. Give a process one store, so its uploads share one budget.
   */
  constructor(readonly options: ObjectStoreOptions, tuning: UploadTuning = SERIAL) {
    this.bucket = options.bucket;
    this.tuning = tuning;
    this.partBudget = new PartBudget(tuning.bufferBytes);
    this.client = new S3Client(s3ClientConfig(options));
    const publicEndpoint = options.publicEndpoint ?? options.endpoint;
    this.publicClient = publicEndpoint === options.endpoint ? this.client : new S3Client(s3ClientConfig(options, publicEndpoint));
  }

  /**
   * Streams `body` into `key` as a multipart upload: parts of `partSizeBytes`, up to `partsInFlight`
   * of them sent at once while the store is the slower side and the shared budget allows (a stream
   * shorter than one part goes in one PutObject). On any error the multipart upload is aborted and
   * whatever may have been completed is deleted, so a failed put leaves no visible object; the error
   * of the store (or of `body`) is thrown.
   */
  async putStream(key: string, body: Readable, contentType = 'text/csv'): Promise<PutResult> {
    const { partSizeBytes, partsInFlight } = this.tuning;
    const gate = new PartGate(this.partBudget, partSizeBytes, partsInFlight);
    pipeline(body, gate, () => {}); // an error of either ends both; lib-storage sees it on the gate
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key: key, Body: gate, ContentType: contentType },
      partSize: partSizeBytes,
      queueSize: partsInFlight,
      leavePartsOnError: false,
    });
    // In Node the SDK reports progress once a part is stored: its bytes are no longer in our hands.
    upload.on('httpUploadProgress', (progress) => gate.stored(progress.loaded ?? 0));
    // lib-storage stops reading when it fails, but does not destroy the source: do it here so the
    // producer (the HTTP request) stops too.
    try {
      await upload.done();
    } catch (err) {
      body.destroy();
      await upload.abort().catch(() => {});
      await this.delete(key).catch(() => {});
      throw err;
    } finally {
      gate.release();
    }
    return { key };
  }

  /** Starts a multipart upload of `key`; returns its UploadId (the store's, to be kept server-side). */
  async startMultipart(key: string, contentType = 'text/csv'): Promise<string> {
    const res = await this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: key, ContentType: contentType }));
    if (!res.UploadId) throw new Error('the store started a multipart upload without an UploadId');
    return res.UploadId;
  }

  /**
   * A presigned URL (SigV4 query string, RFC 3986-encoded) that lets whoever holds it PUT part
   * `partNumber` (1–10,000) of the multipart upload `uploadId` of `key` for `expiresInSeconds`
   * (at most 604,800: SigV4's week). Signed for the public endpoint (S3_PUBLIC_ENDPOINT), with no
   * checksum parameters (WHEN_REQUIRED), so any body may be sent; the store answers the PUT with the
   * part's ETag. Computed locally: no request to the store.
   */
  presignPart(key: string, uploadId: string, partNumber: number, expiresInSeconds: number): Promise<string> {
    const command = new UploadPartCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId, PartNumber: partNumber });
    return getSignedUrl(this.publicClient, command, { expiresIn: expiresInSeconds });
  }

  /**
   * Completes the multipart upload from `parts` (ascending part numbers). Returns null when the
   * object exists, or why the store refused (see CompleteRefusal); any other failure is thrown.
   */
  async completeMultipart(key: string, uploadId: string, parts: readonly CompletedPart[]): Promise<CompleteRefusal | null> {
    try {
      await this.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.bucket,
          Key: key,
          UploadId: uploadId,
          MultipartUpload: { Parts: parts.map((p) => ({ PartNumber: p.partNumber, ETag: p.etag })) },
        }),
      );
      return null;
    } catch (err) {
      if (!(err instanceof S3ServiceException)) throw err;
      const reason = COMPLETE_REFUSALS[err.name];
      if (!reason) throw err;
      return { reason, message: err.message };
    }
  }

  /** Aborts the multipart upload and frees its parts; one already gone (NoSuchUpload) counts as aborted. */
  async abortMultipart(key: string, uploadId: string): Promise<void> {
    try {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId }));
    } catch (err) {
      if (err instanceof S3ServiceException && (err.name === 'NoSuchUpload' || err.$metadata.httpStatusCode === 404)) return;
      throw err;
    }
  }

  async getStream(key: string): Promise<{ body: Readable; size: number }> {
    const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
    return { body: res.Body as Readable, size: Number(res.ContentLength ?? 0) };
  }

  /** The object's first `bytes` bytes (fewer when it is shorter): one ranged GET, RFC 9110 `Range`. */
  async readHead(key: string, bytes: number): Promise<Buffer> {
    const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key, Range: `bytes=0-${bytes - 1}` }));
    return Buffer.from(await res.Body!.transformToByteArray());
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
    if (this.publicClient !== this.client) this.publicClient.destroy();
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
