// Forward-only numbered SQL migrations, applied under an advisory lock so two processes
// starting at once cannot race; each file and its bookkeeping row (with the file's SHA-256) commit
// together. An applied file that was edited or deleted, or a new one numbered below the newest
// applied, stops the migration before anything runs (see migration-plan.ts).
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { runMigrations as runWorkerMigrations } from 'graphile-worker';
import { planMigrations, type AppliedMigration } from './migration-plan.ts';

export const migrationsDir = fileURLToPath(new URL('../../migrations/', import.meta.url));
const LOCK_KEY = 7_311_542_001; // arbitrary, constant: "stream-api migrations"

/**
 * Applies the pending migrations of `dir` (default: the repository's migrations/) in name order, then
 * graphile-worker's own. Returns the names applied. Throws MigrationHistoryError (nothing applied)
 * when the recorded history and the files disagree, or an Error naming the file whose SQL failed
 * (that file rolled back; the ones before it stay applied).
 */
export async function migrate(pool: pg.Pool, log: (msg: string) => void = () => {}, dir: string = migrationsDir): Promise<string[]> {
  const client = await pool.connect();
  const applied: string[] = [];
  try {
    await client.query('SELECT pg_advisory_lock($1)', [LOCK_KEY]);
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`);
    await client.query('ALTER TABLE schema_migrations ADD COLUMN IF NOT EXISTS checksum text');
    const history = (await client.query<AppliedMigration>('SELECT name, checksum FROM schema_migrations')).rows;
    const names = (await readdir(dir)).filter((f) => /^\d{3}_.*\.sql$/.test(f));
    const sql = new Map<string, string>();
    for (const name of names) sql.set(name, await readFile(path.join(dir, name), 'utf8'));
    const files = names.map((name) => ({ name, checksum: createHash('sha256').update(sql.get(name)!).digest('hex') }));
    const plan = planMigrations(files, history);
    for (const file of plan.backfill) {
      await client.query('UPDATE schema_migrations SET checksum = $2 WHERE name = $1 AND checksum IS NULL', [file.name, file.checksum]);
      log(`recorded the checksum of migration ${file.name} (applied before checksums were kept)`);
    }
    for (const file of plan.pending) {
      await client.query('BEGIN');
      try {
        await client.query(sql.get(file.name)!);
        await client.query('INSERT INTO schema_migrations (name, checksum) VALUES ($1, $2)', [file.name, file.checksum]);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK');
        throw new Error(`migration ${file.name} failed: ${(err as Error).message}`, { cause: err });
      }
      applied.push(file.name);
      log(`applied migration ${file.name}`);
    }
    // graphile-worker's own schema (graphile_worker.*), idempotent.
    await runWorkerMigrations({ pgPool: pool });
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [LOCK_KEY]).catch(() => {});
    client.release();
  }
  return applied;
}
