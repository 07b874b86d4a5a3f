// Crash recovery in seconds. graphile-worker keeps a dead worker's job locked for 4 hours; instead,
// live workers renew a short lease, and any worker releases jobs held by workers whose lease lapsed.
import type pg from 'pg';

export async function renewLeases(pool: pg.Pool, workerIds: readonly string[], leaseSeconds: number): Promise<void> {
  if (workerIds.length === 0) return;
  await pool.query(
    `INSERT INTO worker_leases (worker_id, expires_at)
     SELECT id, now() + make_interval(secs => $2) FROM unnest($1::text[]) AS id
     ON CONFLICT (worker_id) DO UPDATE SET expires_at = EXCLUDED.expires_at`,
    [workerIds, leaseSeconds],
  );
}

export async function dropLeases(pool: pg.Pool, workerIds: readonly string[]): Promise<void> {
  if (workerIds.length === 0) return;
  await pool.query('DELETE FROM worker_leases WHERE worker_id = ANY($1::text[])', [workerIds]);
}

/**
 * Unlocks the jobs of workers that hold a job but have no live lease (and have held it longer than
 * a lease, so a worker that has just started and not yet renewed is not mistaken for a dead one).
 * Returns the worker ids released.
 */
export async function releaseDeadWorkers(pool: pg.Pool, leaseSeconds: number): Promise<string[]> {
  const { rows } = await pool.query<{ locked_by: string }>(
    `SELECT DISTINCT j.locked_by
       FROM graphile_worker._private_jobs j
      WHERE j.locked_by IS NOT NULL
        AND j.locked_at < now() - make_interval(secs => $1)
        AND NOT EXISTS (SELECT 1 FROM worker_leases l WHERE l.worker_id = j.locked_by AND l.expires_at > now())`,
    [leaseSeconds],
  );
  const dead = rows.map((r) => r.locked_by);
  if (dead.length > 0) {
    await pool.query('SELECT graphile_worker.force_unlock_workers($1::text[])', [dead]);
  }
  await pool.query(`DELETE FROM worker_leases WHERE expires_at < now() - interval '1 hour'`);
  return dead;
}
