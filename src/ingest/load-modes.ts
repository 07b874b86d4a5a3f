// The loading modes of a tenant's dataset (issue 10), around the one COPY of the load transaction:
// - append: COPY into the table (nothing here).
// - upsert: COPY into a staging table, reject the later of two rows with the same key (duplicate_key),
//   then one INSERT … SELECT … ON CONFLICT (key) DO UPDATE into the table.
// - replace: the table's rows are deleted, then the file's rows loaded (staged like an upsert when the
//   dataset has a key, so a key repeated in the file is a per-row reject, not a failed load).
// Everything runs on the load's connection inside its transaction: a failed or interrupted load leaves
// the table as it was, and a committed one is never applied again (the upload is final).
import type pg from 'pg';
import type { DatasetDef } from './datasets/types.ts';
import { PermanentFailure } from './failures.ts';
import { quoteIdent as id } from './csv/copy-sql.ts';

export type LoadMode = 'append' | 'upsert' | 'replace';

/** Where the COPY goes and whether the rows are then merged from the staging table. */
export interface ModePlan {
  mode: LoadMode;
  /** the table the COPY writes: the dataset's own, or the staging table */
  copyTarget: DatasetDef;
  staged: boolean;
  /** a dry run (dry-run.ts): the COPY goes to a discarded copy of the table, and nothing is merged */
  dryRun: boolean;
}

/** The staging table: temporary (this session only, no WAL) and dropped when the transaction ends, committed or not. */
export const STAGE = { schema: 'pg_temp', table: 'upload_stage' };

/** SQLSTATE invalid_column_reference: ON CONFLICT (key) found no unique index on the key. */
const NO_UNIQUE_INDEX = '42P10';

/** The dataset's table, quoted (schema-qualified for a tenant's own). */
export function tableOf(def: Pick<DatasetDef, 'schema' | 'table'>): string {
  return def.schema === undefined ? id(def.table) : `${id(def.schema)}.${id(def.table)}`;
}

/**
 * Readies the load transaction for `mode` before the COPY. Throws PermanentFailure dataset_has_no_key
 * for an upsert into a dataset without a key (refused when the upload was accepted; kept as a guard).
 */
export async function prepareMode(client: pg.ClientBase, dataset: DatasetDef, mode: LoadMode): Promise<ModePlan> {
  if (mode === 'append') return { mode, copyTarget: dataset, staged: false, dryRun: false };
  assertKeyFor(dataset, mode);
  const table = tableOf(dataset);
  if (mode === 'replace') {
    // DELETE, not TRUNCATE. TRUNCATE takes ACCESS EXCLUSIVE until commit, so every reader of the table
    // would wait for the whole load; and it is not MVCC-safe: a REPEATABLE READ reader whose snapshot
    // predates it sees an empty table after it commits. DELETE keeps readers on the old rows until the
    // commit shows the new ones (never a mix, never empty). SHARE ROW EXCLUSIVE (taken first, so no
    // deadlock with a writer that holds ROW EXCLUSIVE) lets readers through but holds off other loads
    // of the dataset, whose rows the DELETE's snapshot would miss and leave mixed in. The cost: dead
    // tuples for autovacuum, as many as the rows replaced.
    await client.query(`LOCK TABLE ${table} IN SHARE ROW EXCLUSIVE MODE`);
    await client.query(`DELETE FROM ${table}`);
  }
  if (!dataset.key?.length) return { mode, copyTarget: dataset, staged: false, dryRun: false };
  // LIKE … INCLUDING DEFAULTS: the same columns, NOT NULLs and defaults (upload_id from app.upload_id),
  // without the indexes or CHECKs (the validators have checked every value already).
  await client.query(`CREATE TEMP TABLE ${id(STAGE.table)} (LIKE ${table} INCLUDING DEFAULTS) ON COMMIT DROP`);
  return { mode, copyTarget: { ...dataset, ...STAGE }, staged: true, dryRun: false };
}

/** PermanentFailure dataset_has_no_key for an upsert into a dataset without a key (refused when the upload was accepted; kept as a guard). */
export function assertKeyFor(dataset: DatasetDef, mode: LoadMode): void {
  if (mode === 'upsert' && !dataset.key?.length) throw new PermanentFailure('dataset_has_no_key', `dataset "${dataset.name}" has no key; mode=upsert needs one`);
}

/** What merging the staged rows did. */
export interface MergeOutcome {
  /** rows rejected as duplicate_key (the later of two lines with the same key) */
  duplicates: number;
  inserted: number;
  updated: number;
}

/**
 * After the COPY into the staging table: rejects the later line of every repeated key (rejectRepeatedKeys),
 * then merges the rest into the dataset's table. `columns` are the file's dataset columns (the COPY list):
 * an update sets those (and upload_id / line_number: the last writer), and leaves the others as they were.
 * Throws PermanentFailure dataset_key_not_unique when the table lacks the key's unique index.
 */
export async function mergeStaged(
  client: pg.ClientBase,
  dataset: DatasetDef,
  columns: readonly string[],
  opts: { uploadId: string; rejectLimit: number },
): Promise<MergeOutcome> {
  const duplicates = await rejectRepeatedKeys(client, dataset, columns, opts);
  try {
    // xmax = 0 on the returned row: a new tuple (inserted), else the conflicting row was updated.
    const { rows } = await client.query<{ inserted: string; updated: string }>(
      `WITH written AS (${mergeStatement(dataset, columns)} RETURNING (xmax = 0) AS inserted)
       SELECT count(*) FILTER (WHERE inserted) AS inserted, count(*) FILTER (WHERE NOT inserted) AS updated FROM written`,
    );
    return { duplicates, inserted: Number(rows[0]!.inserted), updated: Number(rows[0]!.updated) };
  } catch (err) {
    throw asKeyNotUnique(err, dataset);
  }
}

/** The merge: `INSERT … SELECT … FROM` the staging table `ON CONFLICT (key) DO UPDATE` the file's columns. */
export function mergeStatement(dataset: DatasetDef, columns: readonly string[]): string {
  const key = dataset.key!;
  const written = ['upload_id', 'line_number', ...columns].map(id).join(', ');
  const updates = ['upload_id', 'line_number', ...columns.filter((c) => !key.includes(c))].map((c) => `${id(c)} = EXCLUDED.${id(c)}`).join(', ');
  return `INSERT INTO ${tableOf(dataset)} (${written})
         SELECT ${written} FROM ${id(STAGE.table)}
         ON CONFLICT (${key.map(id).join(', ')}) DO UPDATE SET ${updates}`;
}

/** ON CONFLICT (key) found no unique index on the key → PermanentFailure dataset_key_not_unique; any other error as it is. */
export function asKeyNotUnique(err: unknown, dataset: DatasetDef): unknown {
  if ((err as { code?: unknown }).code !== NO_UNIQUE_INDEX) return err;
  return new PermanentFailure('dataset_key_not_unique', `dataset "${dataset.name}" has no unique index on its key (rows loaded before the key was indexed repeat it); load with mode=replace or append`);
}

/**
 * In the staging table: deletes the later line of every repeated key and records up to `rejectLimit` of
 * them as duplicate_key in upload_errors, in this transaction (so a rolled-back load leaves none); returns
 * how many lines it rejected. A key with a NULL part is not a duplicate of anything, as in the unique
 * index (NULLs are distinct).
 */
export async function rejectRepeatedKeys(
  client: pg.ClientBase,
  dataset: DatasetDef,
  columns: readonly string[],
  opts: { uploadId: string; rejectLimit: number },
): Promise<number> {
  const key = dataset.key!;
  const stage = id(STAGE.table);
  const keyList = key.map(id).join(', ');
  // errors.csv shows the row as loaded (normalised values, in the file's column order), quoted as CSV.
  const raw = columns.length === 0 ? `''` : `concat_ws(',', ${columns.map((c) => `CASE WHEN ${id(c)} IS NULL THEN '' ELSE '"' || replace(${id(c)}::text, '"', '""') || '"' END`).join(', ')})`;
  const keyText = `'(' || concat_ws(', ', ${key.map((c) => `${id(c)}::text`).join(', ')}) || ')'`;
  const present = key.map((c) => `${id(c)} IS NOT NULL`).join(' AND ');
  // Most files repeat no key: a hash aggregate says so at a fraction of the cost of the window's sort.
  const { rows: check } = await client.query<{ repeated: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM ${stage} WHERE ${present} GROUP BY ${keyList} HAVING count(*) > 1) AS repeated`,
  );
  if (!check[0]!.repeated) return 0;
  const { rows: dup } = await client.query<{ n: number }>(
    `WITH ranked AS (
       SELECT line_number, first_value(line_number) OVER w AS first_line, row_number() OVER w AS n, ${raw} AS raw, ${keyText} AS key_text
         FROM ${stage}
        WHERE ${present}
       WINDOW w AS (PARTITION BY ${keyList} ORDER BY line_number)),
     dropped AS (
       DELETE FROM ${stage} s USING ranked r WHERE r.n > 1 AND s.line_number = r.line_number
       RETURNING r.line_number, r.first_line, r.raw, r.key_text),
     recorded AS (
       INSERT INTO upload_errors (upload_id, line, column_name, code, message, raw)
       SELECT $1, line_number, $2, 'duplicate_key',
              format('key %s = %s repeats line %s; line %s is rejected (the first line with a key wins)', $3::text, key_text, first_line, line_number), raw
         FROM (SELECT * FROM dropped ORDER BY line_number LIMIT $4) d
       ON CONFLICT (upload_id, line) DO NOTHING)
     SELECT count(*)::int AS n FROM dropped`,
    [opts.uploadId, key.join(','), `(${key.join(', ')})`, Math.max(0, opts.rejectLimit)],
  );
  return dup[0]!.n;
}
