// The direct-upload expiry sweep: a graphile-worker cron task that aborts the S3 multipart uploads
// of direct uploads not completed before they expired (DIRECT_UPLOAD_EXPIRY_HOURS), so their parts
// stop taking space, and forgets them. What S3's lifecycle rule AbortIncompleteMultipartUpload would
// do, but per upload and on every store (s3rver and MinIO included).
import { parseCronItems, type ParsedCronItem, type Task } from 'graphile-worker';
import type { Kysely } from 'kysely';
import type { DB } from '../db/schema.ts';
import type { Logger } from '../logger.ts';
import type { ObjectStore } from '../storage/object-store.ts';
import { deleteDirectUpload, expiredDirectUploadIds, lockExpiredDirectUpload } from './direct.repository.ts';

export const DIRECT_EXPIRY_TASK = 'expire-direct-uploads';

export interface DirectExpiryDeps {
  db: Kysely<DB>;
  store: Pick<ObjectStore, 'abortMultipart' | 'delete'>;
  logger: Pick<Logger, 'info' | 'warn'>;
  /** expired uploads taken per query; default 100 */
  batchSize?: number;
}

export interface DirectExpirySummary {
  /** expired uploads aborted and forgotten */
  expired: number;
  /** aborts that failed (logged; the upload is kept and the next sweep tries again) */
  failures: number;
}

/** Every 10 minutes (expiry is counted in hours, so an upload outlives its expiry by 10 minutes at most). */
export function directUploadCronItems(): ParsedCronItem[] {
  return parseCronItems([
    { task: DIRECT_EXPIRY_TASK, match: '*/10 * * * *', identifier: DIRECT_EXPIRY_TASK, options: { backfillPeriod: 0 } },
  ]);
}

/**
 * Aborts every expired direct upload: under its row lock (a completion holding it is skipped), the
 * multipart upload is aborted, the object deleted in case a completion had assembled it before its
 * transaction failed (no upload row can reference it: that row and this one are swapped in one
 * transaction), and the row deleted. A store failure keeps the row for the next sweep. Throws only
 * when the database fails.
 */
export async function expireDirectUploads(deps: DirectExpiryDeps): Promise<DirectExpirySummary> {
  const summary: DirectExpirySummary = { expired: 0, failures: 0 };
  // Each id is tried once per sweep: one whose abort failed, or that a completion holds, stays listed.
  const seen = new Set<string>();
  for (;;) {
    const ids = (await expiredDirectUploadIds(deps.db, (deps.batchSize ?? 100) + seen.size)).filter((id) => !seen.has(id));
    if (ids.length === 0) return summary;
    for (const id of ids) {
      seen.add(id);
      const done = await deps.db.transaction().execute(async (trx) => {
        const row = await lockExpiredDirectUpload(trx, id);
        if (!row) return false; // completed, or being completed, meanwhile
        try {
          await deps.store.abortMultipart(row.object_key, row.s3_upload_id);
          await deps.store.delete(row.object_key);
        } catch (err) {
          deps.logger.warn({ err, uploadId: id }, 'direct upload expiry: abort failed; the next sweep tries again');
          summary.failures += 1;
          return false;
        }
        await deleteDirectUpload(trx, id);
        return true;
      });
      if (done) {
        summary.expired += 1;
        deps.logger.info({ uploadId: id }, 'direct upload expired: its multipart upload was aborted');
      }
    }
  }
}

/** The graphile-worker task (scheduled by directUploadCronItems). */
export function createDirectExpiryTask(deps: DirectExpiryDeps): Task {
  return async () => {
    const summary = await expireDirectUploads(deps);
    deps.logger.info(summary, 'direct upload expiry sweep finished');
  };
}
