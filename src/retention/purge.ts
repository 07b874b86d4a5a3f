// Retention: a graphile-worker cron task that purges uploads (with their rejected rows and stored
// objects), deliveries and delivery attempts older than RETENTION_DAYS.
import { parseCronItems, type ParsedCronItem, type Task } from 'graphile-worker';
import type pg from 'pg';
import type { Logger } from '../logger.ts';
import type { ObjectStore } from '../storage/object-store.ts';
import {
  deleteExpiredAttempts,
  deleteExpiredDeliveries,
  deleteExpiredUploads,
  findExpiredUploads,
} from './retention.repository.ts';

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
  /** uploads kept because their stored object could not be deleted (tried again next run) */
  objectFailures: number;
}

/**
 * Hourly (minute 17, away from the top of the hour); the task deletes by age, so one missed run only
 * delays the purge. graphile-worker's cron runs it once per tick however many workers there are.
 */
export function retentionCronItems(): ParsedCronItem[] {
  return parseCronItems([{ task: PURGE_TASK, match: '17 * * * *', identifier: PURGE_TASK, options: { backfillPeriod: 0 } }]);
}

export function createPurgeTask(deps: PurgeDeps): Task {
  return async () => {
    const summary = await purgeExpired(deps);
    deps.logger.info({ ...summary, retentionDays: deps.retentionDays }, 'retention purge finished');
  };
}

const OBJECT_DELETE_CONCURRENCY = 8;

export async function purgeExpired(deps: PurgeDeps): Promise<PurgeSummary> {
  const days = deps.retentionDays;
  const batchSize = deps.batchSize ?? 500;
  const summary: PurgeSummary = { uploads: 0, objects: 0, deliveries: 0, attempts: 0, objectFailures: 0 };
  const failed: string[] = [];

  // Object first, row second: a failed object delete keeps the row, so the next run tries again
  // instead of leaving an orphan in the bucket that nothing points at.
  for (;;) {
    const batch = await findExpiredUploads(deps.pool, days, batchSize, failed);
    if (batch.length === 0) break;
    const deletable: string[] = [];
    for (let i = 0; i < batch.length; i += OBJECT_DELETE_CONCURRENCY) {
      await Promise.all(
        batch.slice(i, i + OBJECT_DELETE_CONCURRENCY).map(async (upload) => {
          if (!upload.object_deleted) {
            try {
              await deps.store.delete(upload.object_key);
              summary.objects += 1;
            } catch (err) {
              deps.logger.warn({ err, uploadId: upload.id }, 'retention: object delete failed; upload kept');
              failed.push(upload.id);
              summary.objectFailures += 1;
              return;
            }
          }
          deletable.push(upload.id);
        }),
      );
    }
    summary.uploads += await deleteExpiredUploads(deps.pool, deletable, days);
    if (batch.length < batchSize) break;
  }

  for (let n = batchSize; n === batchSize; ) {
    n = await deleteExpiredDeliveries(deps.pool, days, batchSize);
    summary.deliveries += n;
  }
  for (let n = batchSize; n === batchSize; ) {
    n = await deleteExpiredAttempts(deps.pool, days, batchSize);
    summary.attempts += n;
  }
  return summary;
}
