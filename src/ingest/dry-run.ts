// A dry run (`dryRun=true` on an upload; Google AIP-163 validate_only): the file is parsed, validated and
// COPYed exactly as a load of its mode would, but into a temporary copy of the dataset's table, so the
// counts, errors.csv and what only PostgreSQL refuses (types, lengths, NOT NULL, CHECKs, a repeated key)
// come out as the load's would, and the table is never written, locked for writing or emptied.
// What the unique indexes of the table would refuse is asked of the table by reads (an append's key
// clash) or the planner (an upsert's ON CONFLICT), since the copy has no indexes.
import type pg from 'pg';
import { quoteIdent as id } from './csv/copy-sql.ts';
import type { DatasetDef } from './datasets/types.ts';
import { PermanentFailure } from './failures.ts';
import { asKeyNotUnique, assertKeyFor, mergeStatement, rejectRepeatedKeys, STAGE, tableOf, type LoadMode, type MergeOutcome, type ModePlan } from './load-modes.ts';

/**
 * Readies the load transaction of a dry run: a temporary table LIKE the dataset's, with its column
 * types, NOT NULLs, defaults and CHECK constraints, but none of its indexes (no WAL, dropped when the
 * transaction ends). Throws PermanentFailure dataset_has_no_key for an upsert into a dataset without a key.
 */
export async function prepareDryRun(client: pg.ClientBase, dataset: DatasetDef, mode: LoadMode): Promise<ModePlan> {
  assertKeyFor(dataset, mode);
  await client.query(`CREATE TEMP TABLE ${id(STAGE.table)} (LIKE ${tableOf(dataset)} INCLUDING DEFAULTS INCLUDING CONSTRAINTS) ON COMMIT DROP`);
  return { mode, copyTarget: { ...dataset, ...STAGE }, staged: true, dryRun: true };
}

/**
 * After the dry run's COPY: what the load of `mode` would have done, with the same refusals. A keyed
 * upsert or replace rejects the later line of a repeated key (duplicate_key, in upload_errors as a load
 * does); an upsert counts as updated the rows whose key the table holds; an append into a keyed
 * dataset fails as its COPY would (PermanentFailure database_rejected_data) when a key repeats in the
 * file or is in the table already; an upsert or keyed replace into a table without the key's unique
 * index fails with dataset_key_not_unique. `columns` are the file's dataset columns (the COPY list).
 */
export async function judgeDryRun(
  client: pg.ClientBase,
  dataset: DatasetDef,
  mode: LoadMode,
  columns: readonly string[],
  opts: { uploadId: string; rejectLimit: number },
): Promise<MergeOutcome> {
  const key = dataset.key ?? [];
  if (key.length > 0 && mode === 'append') await assertNoKeyClash(client, dataset, key);
  const duplicates = key.length > 0 && mode !== 'append' ? await rejectRepeatedKeys(client, dataset, columns, opts) : 0;
  if (key.length > 0 && mode !== 'append') {
    // The planner infers ON CONFLICT's unique index: EXPLAIN (which executes nothing) fails as the merge would.
    await client.query(`EXPLAIN ${mergeStatement(dataset, columns)}`).catch((err: unknown) => {
      throw asKeyNotUnique(err, dataset);
    });
  }
  let updated = 0;
  if (mode === 'upsert') {
    const { rows } = await client.query<{ n: string }>(
      `SELECT count(*) AS n FROM ${id(STAGE.table)} s WHERE EXISTS (SELECT 1 FROM ${tableOf(dataset)} t WHERE ${keyMatch(key)})`,
    );
    updated = Number(rows[0]!.n);
  }
  const { rows } = await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${id(STAGE.table)}`);
  return { duplicates, inserted: Number(rows[0]!.n) - updated, updated };
}

/** `t.k = s.k AND …`: never true for a NULL part, as the unique index treats NULLs as distinct. */
function keyMatch(key: readonly string[]): string {
  return key.map((c) => `t.${id(c)} = s.${id(c)}`).join(' AND ');
}

/** An append's COPY fails on the table's unique key when a key repeats in the file or is in the table. */
async function assertNoKeyClash(client: pg.ClientBase, dataset: DatasetDef, key: readonly string[]): Promise<void> {
  const stage = id(STAGE.table);
  const keyText = `concat_ws(', ', ${key.map((c) => `s.${id(c)}::text`).join(', ')})`;
  const present = key.map((c) => `s.${id(c)} IS NOT NULL`).join(' AND ');
  const { rows } = await client.query<{ key_text: string; place: string }>(
    `(SELECT ${keyText} AS key_text, 'is repeated in the file' AS place FROM ${stage} s WHERE ${present}
       GROUP BY ${key.map((c) => `s.${id(c)}`).join(', ')} HAVING count(*) > 1 LIMIT 1)
     UNION ALL
     (SELECT ${keyText}, 'already exists' FROM ${stage} s WHERE EXISTS (SELECT 1 FROM ${tableOf(dataset)} t WHERE ${keyMatch(key)}) LIMIT 1)
     LIMIT 1`,
  );
  const clash = rows[0];
  if (!clash) return;
  throw new PermanentFailure(
    'database_rejected_data',
    `the database rejected the data: duplicate key value violates the unique key of dataset "${dataset.name}": key (${key.join(', ')})=(${clash.key_text}) ${clash.place} (mode=append; mode=upsert updates such rows)`,
  );
}
