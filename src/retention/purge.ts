// Retention: a graphile-worker cron task that purges uploads (with their rejected rows and stored
// objects), deliveries and delivery attempts older than RETENTION_DAYS; its cron schedule also runs
// the orphan sweep (orphans.ts).
import { parseCronItems, type ParsedCronItem, type Task } from 'graphile-worker';
import type pg from 'pg';
import type { Logger } from '../logger.ts';
import type { ObjectStore } from '../storage/object-store.ts';
import {
  deleteExpiredAttempts,
  deleteExpiredDeliveries,
  deleteExpiredEvents,
  deleteExpiredUploads,
  markExpiredUploads,
} from './retention.repository.ts';
import { ORPHAN_SWEEP_TASK } from './orphans.ts';
import { deleteExpiredOperations } from '../notify/recover.ts';

export const PURGE_TASK = 'purge-expired';

export interface PurgeDeps {
  pool: pg.Pool;
  store: Pick<ObjectStore, 'delete'>;
  logger: Logger;
  retentionDays: number;
  batchSize?: number;
}

export interface PurgeSummary {
  uploads: number;
  objects: number;
  deliveries: number;
  attempts: number;
  /** expanded outbox events whose deliveries are all gone */
  events: number;
  /** long-running operations (endpoint recoveries) done before the retention period */
  operations: number;
  /** stored objects that could not be deleted (their rows went; the orphan sweep removes them later) */
  objectFailures: number;
}

/**
 * Hourly, away from the top of the hour: the purge at minute 17, the orphan sweep at minute 47. Both
 * work by age, so a missed run only delays them. graphile-worker's cron runs each once per tick
 * however many workers there are.
 */
export function retentionCronItems(): ParsedCronItem[] {
  return parseCronItems([
    { task: PURGE_TASK, match: '17 * * * *', identifier: PURGE_TASK, options: { backfillPeriod: 0 } },
    { task: ORPHAN_SWEEP_TASK, match: '47 * * * *', identifier: ORPHAN_SWEEP_TASK, options: { backfillPeriod: 0 } },
  ]);
}

export function createPurgeTask(deps: PurgeDeps): Task {
  return async () => {
    const summary = await purgeExpired(deps);
    deps.logger.info({ ...summary, retentionDays: deps.retentionDays }, 'retention purge finished');
  };
}

const OBJECT_DELETE_CONCURRENCY = 8;

/**
 * Deletes what has expired: settled uploads (rows, rejected rows, stored objects), then settled
 * deliveries and old attempts, then old expanded events left with no delivery, in batches of `batchSize` (default 500). A failed object delete is
 * logged and counted (`objectFailures`); its row goes anyway and the object, which no row references
 * any more, is left to the orphan sweep (orphans.ts). Throws only when the database fails.
 *
 * Purge against retry (POST /uploads/:id/retry locks the upload row, then checks that it is failed,
 * that its object is not marked deleted and that the object exists, then accepts):
 * 1. The purge marks a batch in one statement that locks each row (SKIP LOCKED), re-checks expiry on
 *    the locked row and sets object_deleted_at; only then are objects deleted, then rows.
 * 2. Mark commits before the retry locks → the retry sees object_deleted_at and answers 410
 *    `object_gone`; nothing is enqueued. The same later, between object and row delete.
 * 3. The retry holds the lock when the mark runs → the row is skipped. The retry commits (status
 *    `uploaded`, updated_at now: no longer expired) or rolls back (then a later run takes the row).
 *    Either way the purge never deletes an object a retry has accepted.
 * 4. The purge stops after marking → the rows stay expired and marked: a retry is refused; the next
 *    run deletes the rows (their object counts as gone, so it does not delete it) and the orphan
 *    sweep removes the object.
 */
export async function purgeExpired(deps: PurgeDeps): Promise<PurgeSummary> {
  const days = deps.retentionDays;
  const batchSize = deps.batchSize ?? 500;
  const summary: PurgeSummary = { uploads: 0, objects: 0, deliveries: 0, attempts: 0, events: 0, operations: 0, objectFailures: 0 };

  for (;;) {
    const batch = await markExpiredUploads(deps.pool, days, batchSize);
    if (batch.length === 0) break;
    const stored = batch.filter((upload) => upload.had_object);
    for (let i = 0; i < stored.length; i += OBJECT_DELETE_CONCURRENCY) {
      await Promise.all(
        stored.slice(i, i + OBJECT_DELETE_CONCURRENCY).map(async (upload) => {
          try {
            await deps.store.delete(upload.object_key);
            summary.objects += 1;
          } catch (err) {
            deps.logger.warn({ err, uploadId: upload.id, objectKey: upload.object_key }, 'retention: object delete failed; left for the orphan sweep');
            summary.objectFailures += 1;
          }
        }),
      );
    }
    const deleted = await deleteExpiredUploads(deps.pool, batch.map((upload) => upload.id), days);
    summary.uploads += deleted;
    if (batch.length < batchSize || deleted === 0) break;
  }

  for (let n = batchSize; n === batchSize; ) {
    n = await deleteExpiredDeliveries(deps.pool, days, batchSize);
    summary.deliveries += n;
  }
  for (let n = batchSize; n === batchSize; ) {
    n = await deleteExpiredAttempts(deps.pool, days, batchSize);
    summary.attempts += n;
  }
  for (let n = batchSize; n === batchSize; ) {
    n = await deleteExpiredEvents(deps.pool, days, batchSize);
    summary.events += n;
  }
  for (let n = batchSize; n === batchSize; ) {
    n = await deleteExpiredOperations(deps.pool, days, batchSize);
    summary.operations += n;
  }
  return summary;
}
