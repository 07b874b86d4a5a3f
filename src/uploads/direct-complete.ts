// Completing a direct-to-storage upload: the store assembles the parts the client sent, the object is
// checked (its size is the one declared, its first KiB is CSV text), then one transaction records the
// upload and enqueues its job — the same insert as a multipart upload — and drops the pending state.
import type { Transaction } from 'kysely';
import type { DB } from '../db/schema.ts';
import { AppError } from '../errors.ts';
import type { ObjectStore } from '../storage/object-store.ts';
import { orderParts, type ListedPart } from './direct-parts.ts';
import { deleteDirectUpload, lockDirectUpload, type DirectUploadRow } from './direct.repository.ts';
import type { DirectDeps } from './direct-start.ts';
import { claimIdempotencyKey } from './idempotency.repository.ts';
import { sniffNonCsv, SNIFF_BYTES } from './inspect.ts';
import type { UploadAccepted } from './receive.ts';
import { findUpload, insertUploadWithJob } from './uploads.repository.ts';

/** refused; `discard`: the key of an object the store assembled that is not wanted (the pending state goes too) */
type Refusal = { kind: 'refused'; error: AppError; discard: string | null };

type Outcome =
  | { kind: 'accepted' }
  /** no pending upload of this tenant by that id (completed already, swept, or never) */
  | { kind: 'absent' }
  | Refusal;

/**
 * Completes the tenant's direct upload `id` from the client's list of parts (every part 1…partCount
 * once, any order) and answers as POST /uploads does: 202 { uploadId, status: 'uploaded', statusUrl }.
 * Completing again answers the same (`replayed: true`), whatever the upload's state since.
 *
 * Refusals (AppError), nothing enqueued in any of them:
 * - invalid_parts (a part missing, listed twice, beyond the plan), invalid_part (the store's
 *   InvalidPart: a part not uploaded or an ETag that is not the part's): the upload stays pending —
 *   upload the part again or fix the list, and complete again before it expires;
 * - size_mismatch (the object is not the declared size), unsupported_media_type (its first KiB is
 *   not CSV text): the object is deleted and the upload is over;
 * - direct_upload_expired (410; the sweep aborts it), not_found (another tenant's, or none),
 *   storage_unavailable (503: the store failed; the upload stays pending).
 */
export async function completeDirectUpload(
  deps: DirectDeps,
  req: { tenantId: string; id: string; parts: readonly ListedPart[]; log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void } },
): Promise<{ replayed: boolean; body: UploadAccepted }> {
  const accepted: UploadAccepted = { uploadId: req.id, status: 'uploaded', statusUrl: `/uploads/${req.id}` };
  // The row stays locked while the store completes: a second completion waits and then finds the
  // upload recorded; the expiry sweep skips it. Only calls to the store run under the lock, never
  // the client's bytes.
  const outcome = await deps.db.transaction().execute(async (trx): Promise<Outcome> => {
    const row = await lockDirectUpload(trx, req.tenantId, req.id);
    if (!row) return { kind: 'absent' };
    if (row.expired) return { kind: 'refused', error: new AppError('direct_upload_expired'), discard: null };
    const listed = orderParts(req.parts, row.part_count);
    if ('problem' in listed) return { kind: 'refused', error: new AppError('invalid_parts', listed.problem), discard: null };

    const refusal = await assemble(deps.store, row, listed.parts);
    if (refusal) {
      if (refusal.discard !== null) await deleteDirectUpload(trx, row.id);
      return refusal;
    }
    await deleteDirectUpload(trx, row.id);
    await insertUploadWithJob(trx, uploadRecord(row), deps.jobMaxAttempts);
    await claimKey(trx, row, accepted);
    return { kind: 'accepted' };
  });

  if (outcome.kind === 'absent') {
    if (await findUpload(deps.db, req.tenantId, req.id)) return { replayed: true, body: accepted };
    throw new AppError('not_found', 'upload not found');
  }
  if (outcome.kind === 'refused') {
    if (outcome.discard !== null) {
      const key = outcome.discard;
      // No row references the object now: a failed delete is left to the orphan sweep.
      await deps.store.delete(key).catch((err: unknown) => req.log.warn({ err, objectKey: key }, 'object delete failed; left for the orphan sweep'));
    }
    throw outcome.error;
  }
  req.log.info({ uploadId: req.id }, 'direct upload completed and queued');
  return { replayed: false, body: accepted };
}

/**
 * Has the store assemble the object and checks it. Returns null when it is the file declared, else
 * the refusal. A multipart upload the store no longer knows is accepted when its object is there
 * with the declared size: a completion whose transaction failed after the store had completed.
 */
async function assemble(store: ObjectStore, row: DirectUploadRow, parts: ListedPart[]): Promise<Refusal | null> {
  const storage = (err: unknown) => new AppError('storage_unavailable', undefined, { cause: err });
  const refused = await store.completeMultipart(row.object_key, row.s3_upload_id, parts).catch((err: unknown) => {
    throw storage(err);
  });
  if (refused?.reason === 'invalid_part') {
    return { kind: 'refused', error: new AppError('invalid_part', `the store refused the parts: ${refused.message}`), discard: null };
  }
  const size = await store.head(row.object_key).catch((err: unknown) => {
    throw storage(err);
  });
  if (refused && size === null) {
    // Aborted behind our back (a bucket lifecycle rule): nothing to complete any more.
    return { kind: 'refused', error: new AppError('direct_upload_expired', 'the store no longer holds this upload\'s parts; start a new one'), discard: row.object_key };
  }
  if (size !== row.size_bytes) {
    const message = `the stored file has ${size ?? 0} bytes; ${row.size_bytes} were declared. It was discarded: start a new upload`;
    return { kind: 'refused', error: new AppError('size_mismatch', message), discard: row.object_key };
  }
  const head = await store.readHead(row.object_key, SNIFF_BYTES).catch((err: unknown) => {
    throw storage(err);
  });
  const problem = sniffNonCsv(head);
  if (problem) return { kind: 'refused', error: new AppError('unsupported_media_type', problem), discard: row.object_key };
  return null;
}

function uploadRecord(row: DirectUploadRow) {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    objectKey: row.object_key,
    dataset: row.dataset,
    mode: row.mode,
    dryRun: row.dry_run,
    filename: row.filename,
    sizeBytes: row.size_bytes,
    sha256: null, // the bytes never passed through the API
    callbackUrl: row.callback_url,
    callbackChannel: row.callback_channel,
    maxErrors: row.max_errors,
    maxErrorRatio: row.max_error_ratio,
  };
}

/**
 * From now on the upload's Idempotency-Key replays its acceptance (as a multipart upload's does), and
 * a multipart upload with that key and another body gets 422. A key a multipart upload took in the
 * meantime stays with it: the files are in, so this upload goes ahead without the key.
 */
async function claimKey(trx: Transaction<DB>, row: DirectUploadRow, accepted: UploadAccepted): Promise<void> {
  if (!row.idempotency_key) return;
  await claimIdempotencyKey(trx, {
    tenantId: row.tenant_id,
    key: row.idempotency_key,
    requestHash: row.request_hash,
    uploadId: row.id,
    response: accepted,
  });
}
