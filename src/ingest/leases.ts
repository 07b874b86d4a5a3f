// Crash recovery in seconds. graphile-worker keeps a dead worker's job locked for 4 hours; instead,
// live worker identities renew a short lease, and any worker releases the jobs of identities whose
// lease lapsed. A lapsed lease is never renewed: an identity found dead stays dead (its process,
// if it was only frozen, retires it and carries on under a new one).
import type pg from 'pg';

type Queryable = Pick<pg.Pool, 'query'>;

/**
 * Renews (or creates) the leases of `workerIds` to now + `leaseSeconds` (database clock).
 * Returns the ids renewed; an id missing from the result had a lease that already lapsed, and
 * must not take or keep jobs any more.
 */
export async function renewLeases(db: Queryable, workerIds: readonly string[], leaseSeconds: number): Promise<Set<string>> {
  if (workerIds.length === 0) return new Set();
  const { rows } = await db.query<{ worker_id: string }>(
    `INSERT INTO worker_leases (worker_id, expires_at)
     SELECT id, now() + make_interval(secs => $2) FROM unnest($1::text[]) AS id
     ON CONFLICT (worker_id) DO UPDATE SET expires_at = EXCLUDED.expires_at
      WHERE worker_leases.expires_at > now()
     RETURNING worker_id`,
    [workerIds, leaseSeconds],
  );
  return new Set(rows.map((r) => r.worker_id));
}

/** Ends leases at once (a clean stop): whatever those identities still hold is released on the next sweep. */
export async function dropLeases(db: Queryable, workerIds: readonly string[]): Promise<void> {
  if (workerIds.length === 0) return;
  await db.query('DELETE FROM worker_leases WHERE worker_id = ANY($1::text[])', [workerIds]);
}

/**
 * Unlocks the jobs of worker identities that hold a job but have no live lease, and have held it
 * longer than a lease (an identity that has just started and not yet renewed is not dead). Finding
 * them and unlocking is one statement, through graphile-worker's public surface (the jobs view and
 * force_unlock_workers). Returns the identities released.
 */
export async function releaseDeadWorkers(db: Queryable, leaseSeconds: number): Promise<string[]> {
  const { rows } = await db.query<{ ids: string[] }>(
    `WITH dead AS (
       SELECT array_agg(DISTINCT j.locked_by) AS ids
         FROM graphile_worker.jobs j
        WHERE j.locked_by IS NOT NULL
          AND j.locked_at < now() - make_interval(secs => $1)
          AND NOT EXISTS (SELECT 1 FROM worker_leases l WHERE l.worker_id = j.locked_by AND l.expires_at > now())
       HAVING count(*) > 0)
     SELECT dead.ids FROM dead, graphile_worker.force_unlock_workers(dead.ids)`,
    [leaseSeconds],
  );
  return rows[0]?.ids ?? [];
}

/** Jobs locked by `workerIds` (to find a job an identity holds but does not run). */
export async function jobsLockedBy(db: Queryable, workerIds: readonly string[]): Promise<{ id: string; workerId: string }[]> {
  if (workerIds.length === 0) return [];
  const { rows } = await db.query<{ id: string | number; locked_by: string }>(
    'SELECT id, locked_by FROM graphile_worker.jobs WHERE locked_by = ANY($1::text[])',
    [workerIds],
  );
  return rows.map((r) => ({ id: String(r.id), workerId: r.locked_by }));
}

/** Leases that lapsed long ago are only history. */
export async function forgetOldLeases(db: Queryable): Promise<void> {
  await db.query(`DELETE FROM worker_leases WHERE expires_at < now() - interval '1 hour'`);
}
