// The orphan sweep: stored objects that no upload references are deleted once older than a grace
// period. Retention walks `uploads` rows, so it can never find an object whose row is gone or never
// was: an object whose delete failed (DELETE /uploads/:id, the purge), one stored by an API process
// that died before its row committed, one left behind when a purge stopped midway.
import type { Task } from 'graphile-worker';
import type pg from 'pg';
import type { Logger } from '../logger.ts';
import type { ObjectStore } from '../storage/object-store.ts';
import { unreferencedKeys } from './retention.repository.ts';

export const ORPHAN_SWEEP_TASK = 'sweep-orphan-objects';
/** Where uploads are stored (objectKeyFor); nothing else under it belongs to anyone but an upload row. */
export const UPLOADS_PREFIX = 'uploads/';

export interface OrphanSweepDeps {
  pool: Pick<pg.Pool, 'query'>;
  store: Pick<ObjectStore, 'list' | 'delete'>;
  logger: Logger;
  /**
   * Objects younger than this are never deleted. It must outlast the longest upload: the row is
   * committed only after the object is complete, and S3 dates a multipart object from when its
   * upload began.
   */
  graceMs: number;
  /** keys per listed page (and per reference query); default 1,000 */
  pageSize?: number;
  now?: () => number;
}

export interface OrphanSweepSummary {
  /** objects listed under the prefix */
  listed: number;
  /** old enough and referenced by no upload */
  orphans: number;
  deleted: number;
  /** deletes that failed (logged; the next sweep tries again) */
  failures: number;
}

const DELETE_CONCURRENCY = 8;

/**
 * One sweep over `uploads/`, page by page: one reference query per page, deletes of that page's
 * orphans, then the next page (memory holds one page). An object is an orphan when it is older than
 * the grace and no upload row has its key with the object not marked deleted — so the object of a
 * failed upload awaiting a retry, or of an upload still being processed, is never touched.
 *
 * Why checking and then deleting is safe: a reference to an old unreferenced key cannot appear in
 * between. Keys carry a fresh upload id (objectKeyFor), a retry reuses a row that already references
 * its object, and a new upload's row references only its own, younger-than-grace object.
 * Throws when listing or the database fails; a failed delete is only logged and counted.
 */
export async function sweepOrphans(deps: OrphanSweepDeps): Promise<OrphanSweepSummary> {
  const now = deps.now ?? Date.now;
  const summary: OrphanSweepSummary = { listed: 0, orphans: 0, deleted: 0, failures: 0 };
  for await (const page of deps.store.list(UPLOADS_PREFIX, deps.pageSize ?? 1000)) {
    summary.listed += page.length;
    const cutoff = now() - deps.graceMs;
    const old = page.filter((object) => object.lastModified.getTime() <= cutoff).map((object) => object.key);
    const orphans = await unreferencedKeys(deps.pool, old);
    summary.orphans += orphans.length;
    for (let i = 0; i < orphans.length; i += DELETE_CONCURRENCY) {
      await Promise.all(
        orphans.slice(i, i + DELETE_CONCURRENCY).map(async (key) => {
          try {
            await deps.store.delete(key);
            summary.deleted += 1;
            deps.logger.info({ objectKey: key }, 'orphan sweep: deleted an object no upload references');
          } catch (err) {
            summary.failures += 1;
            deps.logger.warn({ err, objectKey: key }, 'orphan sweep: delete failed; the next sweep tries again');
          }
        }),
      );
    }
  }
  return summary;
}

/** The graphile-worker task (scheduled by retentionCronItems). */
export function createOrphanSweepTask(deps: OrphanSweepDeps): Task {
  return async () => {
    const summary = await sweepOrphans(deps);
    deps.logger.info({ ...summary, graceMs: deps.graceMs }, 'orphan sweep finished');
  };
}
