// The tus data store: @tus/s3-store over the project's bucket, with the settings and the two guards
// this service needs. What it stores per upload (the id is the object key, objectKeyFor):
//   <key>          a multipart upload while bytes arrive (one part per ≥ 5 MiB), the object once complete
//   <key>.info     the upload's length, metadata and multipart upload id (JSON)
//   <key>.part     the last bytes of a PATCH too few for an S3 part (< 5 MiB), until the next PATCH
// @tus/s3-store buffers each part in a temporary file (os.tmpdir()) before sending it: the one place
// the service touches local disk, at most `maxConcurrentPartUploads` parts per process.
import { pipeline, type Readable } from 'node:stream';
import { S3Store, type MetadataValue } from '@tus/s3-store';
import { ERRORS, type KvStore, type Upload } from '@tus/server';
import { s3ClientConfig, type ObjectStoreOptions } from '../../storage/object-store.ts';
import { RunningHashes, type KnownDigest } from './hashes.ts';

export interface TusStoreOptions {
  s3: ObjectStoreOptions;
  /** an unfinished upload expires this long after its creation */
  expiryMs: number;
  /**
   * Called when the store finds an upload complete: makes sure it is recorded (the finish may have
   * failed after the object was completed) and answers false when it is gone — no row and no object,
   * as after an abort by a lifecycle rule, a DELETE /uploads/:id or retention.
   */
  settle(id: string): Promise<boolean>;
}

/** Parts of 8 MiB (@tus/s3-store's default), at most this many being sent at once per process. */
const PART_SIZE = 8 * 1024 * 1024;
const CONCURRENT_PARTS = 8;

/**
 * No cache of the `.info` object: each request reads it again (one small GET), so that API processes
 * never disagree — with @tus/s3-store's in-memory default, a process that served an upload before
 * another terminated it would still take it for alive, and, its multipart upload gone, for complete.
 */
class NoCache implements KvStore<MetadataValue> {
  async get(): Promise<MetadataValue | undefined> {
    return undefined;
  }
  async set(): Promise<void> {}
  async delete(): Promise<void> {}
}

/**
 * @tus/s3-store with expiry by our sweep (no S3 object tags: `useTags: false`, since the embedded store
 * and many S3-compatible ones have no lifecycle rules to read them), and:
 * - getUpload: an upload whose multipart upload is gone is "complete" to @tus/s3-store; it is only
 *   if `settle` finds it recorded or its object stored, else it is gone (410 upload_expired).
 * - write: a final PATCH retried after the upload completed (its response was lost) writes nothing
 *   and succeeds, so the finish hook answers it again with the upload id.
 */
export class TusS3Store extends S3Store {
  private readonly hashes = new RunningHashes();

  constructor(private readonly opts: TusStoreOptions) {
    super({
      s3ClientConfig: { ...s3ClientConfig(opts.s3), bucket: opts.s3.bucket },
      expirationPeriodInMilliseconds: opts.expiryMs,
      useTags: false,
      cache: new NoCache(),
      partSize: PART_SIZE,
      maxConcurrentPartUploads: CONCURRENT_PARTS,
    });
  }

  /**
   * The SHA-256 of upload `id`, complete at `size` bytes, if every byte of it passed through this
   * process's writes in order (RunningHashes); else null, and the object must be read back to hash it.
   */
  takeDigest(id: string, size: number | undefined): KnownDigest | null {
    return this.hashes.take(id, size);
  }

  /** The Upload-Metadata the upload was created with (from its `.info` object). */
  async metadataOf(id: string): Promise<Record<string, string | null> | undefined> {
    return (await this.getMetadata(id)).file.metadata;
  }

  override async getUpload(id: string): Promise<Upload> {
    const upload = await super.getUpload(id);
    if (upload.size !== undefined && upload.offset === upload.size && !(await this.opts.settle(id))) {
      throw ERRORS.FILE_NO_LONGER_EXISTS;
    }
    return upload;
  }

  /**
   * Removes expired unfinished tus uploads: aborts each multipart upload, deletes its `.info` and `.part`.
   * Returns how many uploads were removed. @tus/s3-store's own sweep aborts every multipart upload of
   * the bucket initiated before the expiry; this one only those whose `.info` names that multipart
   * upload, so a direct upload (POST /uploads/direct) or a multipart POST /upload in progress in the
   * same bucket is never touched whatever the expiries.
   */
  override async deleteExpired(): Promise<number> {
    let removed = 0;
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    for (;;) {
      const page = await this.client.listMultipartUploads({ Bucket: this.bucket, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker });
      for (const upload of page.Uploads ?? []) {
        const { Key: key, UploadId: uploadId, Initiated: initiated } = upload;
        if (!key || !uploadId || !initiated || Date.now() <= this.getExpirationDate(initiated.toISOString()).getTime()) continue;
        const info = await this.getMetadata(key).catch(() => null);
        if (info?.['upload-id'] !== uploadId) continue; // not a tus upload
        await this.client.abortMultipartUpload({ Bucket: this.bucket, Key: key, UploadId: uploadId });
        await this.client.deleteObjects({
          Bucket: this.bucket,
          Delete: { Objects: [{ Key: this.infoKey(key) }, { Key: this.partKey(key, true) }] },
        });
        removed += 1;
      }
      if (!page.IsTruncated) return removed;
      keyMarker = page.NextKeyMarker;
      uploadIdMarker = page.NextUploadIdMarker;
    }
  }

  override async write(src: Readable, id: string, offset: number): Promise<number> {
    const hashing = this.hashes.write(id, offset);
    // An error on either side destroys both, as the handler's own pipeline would with `src` alone.
    pipeline(src, hashing.stream, () => {});
    try {
      const newOffset = await super.write(hashing.stream, id, offset);
      hashing.settle(newOffset);
      return newOffset;
    } catch (err) {
      // The handler has just seen offset = size (getUpload): the upload is complete, nothing is left to write.
      if (!isNoSuchUpload(err)) throw err;
      hashing.stream.resume();
      return offset;
    }
  }
}

function isNoSuchUpload(err: unknown): boolean {
  return typeof err === 'object' && err !== null && ((err as { name?: unknown }).name === 'NoSuchUpload' || (err as { Code?: unknown }).Code === 'NoSuchUpload');
}
