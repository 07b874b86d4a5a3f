// Starting a direct-to-storage upload: the options are checked as for a multipart upload, an S3
// multipart upload is started for the object key, and the client gets one presigned URL per part.
// The bytes then go from the client to the store; the API sees none of them.
import { createHash, randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { DB } from '../db/schema.ts';
import { AppError } from '../errors.ts';
import type { AddressList } from '../notify/ssrf.ts';
import { objectKeyFor, type ObjectStore } from '../storage/object-store.ts';
import { planParts, S3_MAX_OBJECT_BYTES } from './direct-parts.ts';
import { findDirectUploadByKey, insertDirectUpload, type DirectUploadRow } from './direct.repository.ts';
import { findIdempotentResponse } from './idempotency.repository.ts';
import { checkIdempotencyKey, displayFilename, parseOptions, type UploadAccepted, assertDatasetDefined } from './receive.ts';

export interface DirectDeps {
  db: Kysely<DB>;
  store: ObjectStore;
  jobMaxAttempts: number;
  /** WEBHOOK_ALLOWED_CIDRS: private ranges a callback may target */
  allowedCidrs: AddressList;
  /** MAX_UPLOAD_BYTES */
  maxUploadBytes: number;
  /** DIRECT_UPLOAD_EXPIRY_HOURS */
  expiryHours: number;
  /** DIRECT_UPLOAD_PART_MIB, in bytes */
  partSizeBytes: number;
}

/** The body of POST /uploads/direct (already typed and bounded by the route's schema). */
export interface DirectUploadRequest {
  filename: string;
  /** the file's exact size in bytes; the stored object must have it */
  size: number;
  dataset?: string;
  mode?: string;
  dryRun?: boolean;
  callbackUrl?: string;
  callbackChannel?: 'webhook' | 'slack';
  maxErrors?: number;
  maxErrorRatio?: number;
}

/** What the client needs to send the parts and complete the upload. */
export interface DirectUploadStarted {
  uploadId: string;
  /** bytes of every part but the last, which holds the rest */
  partSizeBytes: number;
  partCount: number;
  /** when the part URLs stop working and an upload not completed by then is aborted (ISO 8601) */
  expiresAt: string;
  /** PUT part n's bytes to parts[n-1].url; keep the ETag header of each answer for completion */
  parts: { partNumber: number; url: string }[];
  completeUrl: string;
  statusUrl: string;
}

export type StartOutcome =
  | { kind: 'started'; replayed: boolean; body: DirectUploadStarted }
  /** the Idempotency-Key names an upload already completed: its acceptance, as POST /uploads answers */
  | { kind: 'accepted'; replayed: true; body: UploadAccepted };

/**
 * Starts a direct upload of `body.size` bytes. The same Idempotency-Key (24 h, per tenant) with the
 * same request returns the pending upload again (fresh URLs, the same expiry) or, once completed,
 * its acceptance; with another request → 422 idempotency_key_reused. Throws AppError: file_too_large
 * (over MAX_UPLOAD_BYTES or S3's 5 TiB), the option errors of a multipart upload, invalid_idempotency_key,
 * direct_upload_expired (the key's upload expired and awaits the sweep), storage_unavailable.
 */
export async function startDirectUpload(
  deps: DirectDeps,
  req: { tenantId: string; body: DirectUploadRequest; idempotencyKey: string | undefined; log: { info(obj: object, msg: string): void } },
): Promise<StartOutcome> {
  checkIdempotencyKey(req.idempotencyKey);
  const { body } = req;
  if (body.size > Math.min(deps.maxUploadBytes, S3_MAX_OBJECT_BYTES)) {
    throw new AppError('file_too_large', `size ${body.size} exceeds the maximum upload size of ${Math.min(deps.maxUploadBytes, S3_MAX_OBJECT_BYTES)} bytes`);
  }
  const raw: Record<string, string> = {};
  for (const [name, value] of Object.entries(body)) if (name !== 'filename' && name !== 'size' && value !== undefined) raw[name] = String(value);
  const options = parseOptions(raw, deps.allowedCidrs);
  // before the client is sent any part URL: an unknown dataset, or mode=upsert without a key, is refused now
  await assertDatasetDefined(deps.db, req.tenantId, options);
  const filename = displayFilename(body.filename);
  const requestHash = createHash('sha256').update(JSON.stringify(['direct', filename, body.size, options])).digest('hex');

  const key = req.idempotencyKey;
  if (key) {
    const previous = await replayFor(deps, req.tenantId, key, requestHash);
    if (previous) return previous;
  }

  const plan = planParts(body.size, deps.partSizeBytes);
  const uploadId = randomUUID();
  const objectKey = objectKeyFor(req.tenantId, uploadId);
  const s3UploadId = await deps.store.startMultipart(objectKey).catch((err: unknown) => {
    throw new AppError('storage_unavailable', undefined, { cause: err });
  });
  let expiresAt: Date | null;
  try {
    expiresAt = await insertDirectUpload(
      deps.db,
      {
        id: uploadId,
        tenant_id: req.tenantId,
        dataset: options.dataset,
        mode: options.mode,
        dry_run: options.dryRun,
        filename,
        size_bytes: body.size,
        object_key: objectKey,
        s3_upload_id: s3UploadId,
        part_size_bytes: plan.partSizeBytes,
        part_count: plan.partCount,
        callback_url: options.callbackUrl,
        callback_channel: options.callbackChannel,
        max_errors: options.maxErrors,
        max_error_ratio: options.maxErrorRatio,
        idempotency_key: key ?? null,
        request_hash: requestHash,
      },
      deps.expiryHours,
    );
  } catch (err) {
    await deps.store.abortMultipart(objectKey, s3UploadId).catch(() => {});
    throw err;
  }
  if (!expiresAt) {
    // A concurrent request with the same key recorded its upload first: answer with that one.
    await deps.store.abortMultipart(objectKey, s3UploadId).catch(() => {});
    const winner = await replayFor(deps, req.tenantId, key!, requestHash);
    if (!winner) throw new Error('idempotency key conflict without a pending upload');
    return winner;
  }
  req.log.info({ uploadId, bytes: body.size, partCount: plan.partCount, dataset: options.dataset }, 'direct upload started');
  const started = await presentStarted(deps.store, { id: uploadId, object_key: objectKey, s3_upload_id: s3UploadId, ...plan, expiresAt });
  return { kind: 'started', replayed: false, body: started };
}

/** The answer already given to this key: a completed upload's acceptance, or its pending upload. */
async function replayFor(deps: DirectDeps, tenantId: string, key: string, requestHash: string): Promise<StartOutcome | null> {
  const completed = await findIdempotentResponse(deps.db, tenantId, key);
  if (completed) {
    if (completed.requestHash !== requestHash) throw new AppError('idempotency_key_reused');
    return { kind: 'accepted', replayed: true, body: completed.response as UploadAccepted };
  }
  const pending = await findDirectUploadByKey(deps.db, tenantId, key);
  if (!pending) return null;
  if (pending.request_hash !== requestHash) throw new AppError('idempotency_key_reused');
  if (pending.expired) throw new AppError('direct_upload_expired', 'the direct upload of this Idempotency-Key expired; use a new key');
  return { kind: 'started', replayed: true, body: await presentStarted(deps.store, rowPlan(pending)) };
}

function rowPlan(row: DirectUploadRow) {
  return { ...row, partSizeBytes: row.part_size_bytes, partCount: row.part_count, expiresAt: row.expires_at };
}

/** The client's view of a pending upload; the URLs are signed to expire with it. */
async function presentStarted(
  store: ObjectStore,
  u: { id: string; object_key: string; s3_upload_id: string; partSizeBytes: number; partCount: number; expiresAt: Date },
): Promise<DirectUploadStarted> {
  const expiresIn = Math.max(1, Math.floor((u.expiresAt.getTime() - Date.now()) / 1000));
  const numbers = Array.from({ length: u.partCount }, (_, i) => i + 1);
  const parts = await Promise.all(
    numbers.map(async (partNumber) => ({ partNumber, url: await store.presignPart(u.object_key, u.s3_upload_id, partNumber, expiresIn) })),
  );
  return {
    uploadId: u.id,
    partSizeBytes: u.partSizeBytes,
    partCount: u.partCount,
    expiresAt: u.expiresAt.toISOString(),
    parts,
    completeUrl: `/uploads/${u.id}/complete`,
    statusUrl: `/uploads/${u.id}`,
  };
}
