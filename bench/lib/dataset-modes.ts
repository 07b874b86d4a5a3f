// `npm run bench:datasets -- --modes`: the loading modes against each other, in one run, on a throw-away
// database (DATABASE_URL's server): the real process-upload task (transform, COPY, staging, merge,
// bookkeeping) loads the same file of N rows of a keyed 12-column dataset
//   append   into a table already holding N/2 rows of other keys (same table size and unique index)
//   upsert   into a table already holding N/2 of the file's keys: N/2 rows updated, N/2 inserted
// and each again as a dry run (dryRun=true: COPY into a temporary copy of the table, nothing loaded;
// checked to leave the table as it was), and prints the ratios. The object store is left out of both (the file is read from local disk), so
// the ratio is the database side's: the staging COPY plus INSERT … ON CONFLICT against the plain COPY.
import { randomUUID } from 'node:crypto';
import { createReadStream, statSync } from 'node:fs';
import type { Job, JobHelpers } from 'graphile-worker';
import { applyDataset } from '../../src/datasets/datasets.repository.ts';
import type { DatasetInput } from '../../src/datasets/definition.ts';
import { normaliseDefinition } from '../../src/datasets/definition.ts';
import { migrate } from '../../src/db/migrate.ts';
import { createDb, createPool } from '../../src/db/pool.ts';
import { createProcessUploadTask } from '../../src/ingest/process-upload.ts';
import { createLogger } from '../../src/logger.ts';
import type { ObjectStore } from '../../src/storage/object-store.ts';
import { ensureTenant } from '../../src/tenants/tenants.repository.ts';
import { adminExec, DEFAULT_ADMIN_URL, dropBenchDatabase, randomDatabaseName, withDatabase } from './db.ts';

type Mode = 'append' | 'upsert';
type Variant = { mode: Mode; dryRun: boolean };
const VARIANTS: Variant[] = [
  { mode: 'append', dryRun: false },
  { mode: 'upsert', dryRun: false },
  { mode: 'append', dryRun: true },
  { mode: 'upsert', dryRun: true },
];
const label = (v: Variant) => `${v.mode}${v.dryRun ? ' dry run' : ''}`;

/**
 * Runs the modes bench. `writeFile(path, from, to)` writes a CSV of the wide dataset with keys from..to
 * (inclusive); `keyed` is that dataset's definition (with its key). Prints rows/s and the ratio.
 */
export async function benchModes(opts: {
  rows: number;
  runs: number;
  dir: string;
  keyed: DatasetInput;
  writeFile: (file: string, from: number, to: number, variant: number) => Promise<void>;
}): Promise<void> {
  const { rows, runs, dir } = opts;
  const half = Math.floor(rows / 2);
  const adminUrl = process.env.DATABASE_URL ?? DEFAULT_ADMIN_URL;
  const dbName = randomDatabaseName();
  await adminExec(adminUrl, `CREATE DATABASE ${dbName}`);
  const pool = createPool(withDatabase(adminUrl, dbName), 'stream-api-bench-modes', 4);
  const db = createDb(pool);
  try {
    await migrate(pool);
    const tenant = await ensureTenant(db, 'bench');
    const files = {
      load: `${dir}/modes-load.csv`, // keys 1..N
      seedOverlap: `${dir}/modes-seed-overlap.csv`, // keys 1..N/2, other values
      seedDisjoint: `${dir}/modes-seed-disjoint.csv`, // keys N+1..N+N/2
    };
    await opts.writeFile(files.load, 1, rows, 0);
    await opts.writeFile(files.seedOverlap, 1, half, 1);
    await opts.writeFile(files.seedDisjoint, rows + 1, rows + half, 1);
    const byKey = new Map<string, string>();
    const store = {
      getStream: async (key: string) => ({ body: createReadStream(byKey.get(key)!, { highWaterMark: 1 << 20 }), size: statSync(byKey.get(key)!).size }),
      delete: async () => {},
    } as unknown as ObjectStore;
    const task = createProcessUploadTask({ pool, store, logger: createLogger('warn', 'stderr'), gzip: { maxRatio: 1000, maxUncompressedBytes: Number.MAX_SAFE_INTEGER } });

    const runLoad = async (dataset: string, file: string, mode: Mode, dryRun = false) => {
      const id = randomUUID();
      byKey.set(id, file);
      await pool.query(
        `INSERT INTO uploads (id, tenant_id, dataset, mode, dry_run, filename, size_bytes, object_key) VALUES ($1::uuid, $2, $3, $4, $6, 'bench.csv', $5, $1::text)`,
        [id, tenant.id, dataset, mode, statSync(file).size, dryRun],
      );
      const t0 = process.hrtime.bigint();
      await task({ uploadId: id }, helpersFor(id, pool));
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      const { rows: r } = await pool.query('SELECT status, error, rows_processed::int, rows_inserted::int, rows_updated::int FROM uploads WHERE id = $1', [id]);
      if (r[0].status !== 'completed') throw new Error(`${mode} load failed: ${r[0].error}`);
      return { seconds, ...(r[0] as { rows_processed: number; rows_inserted: number | null; rows_updated: number | null }) };
    };

    const best = new Map<string, number>();
    for (let run = 0; run < runs; run++) {
      for (const variant of VARIANTS) {
        const { mode, dryRun } = variant;
        // a fresh table each time: the same starting size, the same index, a warm cache (seeded just before)
        const name = `${mode}_${dryRun ? 'dry_' : ''}${run}`;
        await applyDataset(db, tenant.id, normaliseDefinition({ ...opts.keyed, name }), { createOnly: true });
        await runLoad(name, mode === 'append' ? files.seedDisjoint : files.seedOverlap, 'append');
        await pool.query('CHECKPOINT');
        const r = await runLoad(name, files.load, mode, dryRun);
        const expected = mode === 'append' ? { rows_processed: rows } : { rows_processed: rows, rows_inserted: rows - half, rows_updated: half };
        for (const [k, v] of Object.entries(expected)) {
          if ((r as Record<string, unknown>)[k] !== v) throw new Error(`${label(variant)}: ${k} is ${(r as Record<string, unknown>)[k]}, expected ${v}`);
        }
        if (dryRun) {
          const { rows: left } = await pool.query(`SELECT count(*)::int AS n FROM "t_${tenant.id.replaceAll('-', '')}"."${name}"`);
          if (left[0].n !== half) throw new Error(`${label(variant)} changed the table: ${left[0].n} rows, expected ${half}`);
        }
        best.set(label(variant), Math.min(best.get(label(variant)) ?? Infinity, r.seconds));
      }
    }
    const mb = statSync(files.load).size / 1e6;
    console.log(`\nloading modes: ${rows.toLocaleString('en')} rows (${mb.toFixed(0)} MB, 12 columns, key order_id) into a table of ${half.toLocaleString('en')} rows, best of ${runs}`);
    console.log('the real process-upload task against PostgreSQL (object store left out: the file is read from local disk)\n');
    const what: Record<string, string> = {
      append: 'append (plain COPY)',
      upsert: `upsert (${(rows - half).toLocaleString('en')} new, ${half.toLocaleString('en')} updated)`,
      'append dry run': 'append dry run (nothing loaded)',
      'upsert dry run': 'upsert dry run (nothing loaded)',
    };
    for (const [name, s] of best) {
      console.log(`${what[name]!.padEnd(40)} ${s.toFixed(2).padStart(7)} s  ${Math.round(rows / s).toLocaleString('en').padStart(9)} rows/s`);
    }
    const ratio = (a: string, b: string) => (best.get(b)! / best.get(a)!).toFixed(2);
    console.log(`\nratio upsert / append throughput: ${ratio('upsert', 'append')}×`);
    console.log(`dry run / load time: append ${(best.get('append dry run')! / best.get('append')!).toFixed(2)}, upsert ${(best.get('upsert dry run')! / best.get('upsert')!).toFixed(2)}`);
  } finally {
    await db.destroy().catch(() => {}); // ends the pool too
    await dropBenchDatabase(adminUrl, dbName);
  }
}

/** graphile-worker's helpers as the task reads them: its first attempt of five, held by this process. */
function helpersFor(uploadId: string, pool: import('pg').Pool): JobHelpers {
  const now = new Date();
  const job = {
    id: '1', job_queue_id: null, task_id: 1, task_identifier: 'process-upload', payload: { uploadId }, priority: 0, run_at: now,
    attempts: 1, max_attempts: 5, last_error: null, created_at: now, updated_at: now, key: `upload:${uploadId}`, revision: 0,
    locked_at: now, locked_by: 'bench', flags: null, is_available: false,
  } as Job;
  const abort = new AbortController();
  return {
    logger: { info: () => {}, warn: () => {}, error: () => {}, debug: () => {} },
    job,
    getQueueName: () => null,
    query: (text: string, values?: unknown[]) => pool.query(text, values),
    abortSignal: abort.signal,
  } as unknown as JobHelpers;
}
