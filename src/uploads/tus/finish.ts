// When the last byte of a tus upload lands: the same transaction as the multipart path (the upload
// row + its job, and the Idempotency-Key claim), once the object's SHA-256, size and CSV sniff are
// known. The bytes arrived over many requests, maybe many processes: when they all passed through this
// process in order, their hash was carried along (src/uploads/tus/hashes.ts) and only the object's
// size and first KiB are read; otherwise the object is read back once to hash it.
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Kysely } from 'kysely';
import type { DB } from '../../db/schema.ts';
import { AppError } from '../../errors.ts';
import type { AddressList } from '../../notify/ssrf.ts';
import type { ObjectStore } from '../../storage/object-store.ts';
import { claimIdempotencyKey, findIdempotentResponse } from '../idempotency.repository.ts';
import { InspectStream, sniffNonCsv, SNIFF_BYTES } from '../inspect.ts';
import { hashRequest, parseOptions, replay, uploadRecord, type UploadAccepted } from '../receive.ts';
import { findUpload, insertUploadWithJob } from '../uploads.repository.ts';
import type { KnownDigest } from './hashes.ts';
import { optionFields, tusFilename, type TusMetadata } from './metadata.ts';

export interface TusFinishDeps {
  db: Kysely<DB>;
  store: ObjectStore;
  jobMaxAttempts: number;
  allowedCidrs: AddressList;
  log: { info(obj: object, msg: string): void };
}

/** The tus upload: its tenant, its id (the upload's id too) and its object. */
export interface TusUploadRef {
  tenantId: string;
  uploadId: string;
  objectKey: string;
}

export interface TusFinished {
  /** true when an Idempotency-Key named an earlier upload: this one's object was deleted */
  replayed: boolean;
  body: UploadAccepted;
}

class KeyTaken extends Error {}

/**
 * Records the completed upload `ref` and enqueues its job in one transaction (insertUploadWithJob,
 * claimIdempotencyKey), as POST /uploads does. Idempotent: an upload already recorded answers as
 * it did. `digest`: the SHA-256 of all the upload's bytes if this process hashed them on their way
 * (else the object is read back). Returns null when the upload is gone (no row and no object). Throws AppError
 * `unsupported_media_type` (the object is not CSV text: it is deleted), `idempotency_key_reused`,
 * `storage_unavailable` when the object cannot be read.
 */
export async function finishTusUpload(
  deps: TusFinishDeps,
  ref: TusUploadRef,
  metadata: TusMetadata | undefined,
  digest?: KnownDigest | null,
): Promise<TusFinished | null> {
  const accepted: UploadAccepted = { uploadId: ref.uploadId, status: 'uploaded', statusUrl: `/uploads/${ref.uploadId}` };
  if (await findUpload(deps.db, ref.tenantId, ref.uploadId)) return { replayed: false, body: accepted };

  const options = parseOptions(optionFields(metadata), deps.allowedCidrs);
  const read = (digest && (await checkDigest(deps.store, ref.objectKey, digest))) || (await readBack(deps.store, ref.objectKey));
  if (!read) return null;
  const file = { filename: tusFilename(metadata), ...read };
  const requestHash = hashRequest(file, options);
  const key = metadata?.idempotencyKey ?? undefined;

  const previous = key ? await findIdempotentResponse(deps.db, ref.tenantId, key) : undefined;
  if (previous) {
    await deps.store.delete(ref.objectKey).catch(() => {});
    return replay(previous, requestHash);
  }
  const record = uploadRecord(ref.tenantId, ref.uploadId, ref.objectKey, file, options);
  try {
    await deps.db.transaction().execute(async (trx) => {
      await insertUploadWithJob(trx, record, deps.jobMaxAttempts);
      const claim = { tenantId: ref.tenantId, key: key ?? '', requestHash, uploadId: ref.uploadId, response: accepted };
      if (key && !(await claimIdempotencyKey(trx, claim))) throw new KeyTaken();
    });
  } catch (err) {
    // Recorded meanwhile by another request finishing the same upload (a HEAD settling it): done.
    if (!(err instanceof KeyTaken) && (await findUpload(deps.db, ref.tenantId, ref.uploadId))) return { replayed: false, body: accepted };
    if (!(err instanceof KeyTaken)) throw err;
    const winner = await findIdempotentResponse(deps.db, ref.tenantId, key!);
    if (!winner) throw new Error('idempotency key conflict without a stored response', { cause: err });
    await deps.store.delete(ref.objectKey).catch(() => {});
    return replay(winner, requestHash);
  }
  // hashedInPassing: false when the object had to be read back whole to hash it
  deps.log.info({ uploadId: ref.uploadId, bytes: file.bytes, dataset: options.dataset, hashedInPassing: read.hashedInPassing }, 'resumable upload complete: stored and queued');
  return { replayed: false, body: accepted };
}

/** The stored object's size and SHA-256, and whether the hash was carried along (not read back). */
interface Read {
  bytes: number;
  sha256: string;
  hashedInPassing: boolean;
}

/**
 * The carried digest, once the stored object has its size (else null: read it back) and its first KiB
 * passes the sniff (not CSV text → deleted, 415, as readBack).
 */
async function checkDigest(store: ObjectStore, objectKey: string, digest: KnownDigest): Promise<Read | null> {
  let problem: string | null;
  try {
    if ((await store.head(objectKey)) !== digest.bytes) return null;
    problem = digest.bytes === 0 ? null : sniffNonCsv(await store.readHead(objectKey, SNIFF_BYTES));
  } catch (err) {
    throw new AppError('storage_unavailable', undefined, { cause: err });
  }
  if (problem) {
    await store.delete(objectKey).catch(() => {});
    throw new AppError('unsupported_media_type', problem);
  }
  return { bytes: digest.bytes, sha256: digest.sha256, hashedInPassing: true };
}

/** SHA-256 and size of the stored object (null when there is none); not CSV text → deleted, 415. */
async function readBack(store: ObjectStore, objectKey: string): Promise<Read | null> {
  let inspect: InspectStream;
  try {
    if ((await store.head(objectKey)) === null) return null;
    const { body } = await store.getStream(objectKey);
    inspect = new InspectStream();
    await pipeline(body, inspect, new Writable({ write: (_chunk, _enc, cb) => cb() }));
  } catch (err) {
    if (err instanceof AppError && err.code === 'unsupported_media_type') {
      await store.delete(objectKey).catch(() => {});
      throw err;
    }
    throw new AppError('storage_unavailable', undefined, { cause: err });
  }
  return { bytes: inspect.bytes, sha256: inspect.sha256, hashedInPassing: false };
}
