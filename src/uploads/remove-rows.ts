// Undoing a load (issue 10): DELETE /uploads/:id/rows takes back the rows an append loaded. One
// transaction deletes the dataset table's rows `WHERE upload_id = $1` (whatever index serves it: the
// unique (upload_id, line_number) btree, or a BRIN on upload_id, whose rows are contiguous), records
// rows_removed_at / rows_removed on the upload and writes the upload.rows_removed outbox event, so the
// event is sent if and only if the rows are gone.
import { sql, type Kysely } from 'kysely';
import type { DB } from '../db/schema.ts';
import { qualifiedTable } from '../datasets/ddl.ts';
import { quoteIdentifier, tenantSchema } from '../datasets/identifiers.ts';
import { AppError } from '../errors.ts';
import { getDataset } from '../ingest/datasets/index.ts';

/** The answer of DELETE /uploads/:id/rows (the same on a repeated call: the first removal's). */
export interface RowsRemoved {
  uploadId: string;
  dataset: string;
  /** rows deleted: those still the upload's (a later upsert takes over the rows it updates, a replace deletes them) */
  rowsRemoved: number;
  /** when they were removed (ISO 8601, UTC) */
  rowsRemovedAt: string;
}

/**
 * Removes the rows upload `id` of tenant `tenantId` appended, in one transaction with its record and
 * event. Idempotent: once removed, a repeated call removes nothing, writes no event and answers the
 * first removal (`repeated: true`). Throws AppError: not_found (no such upload for this tenant),
 * upload_not_completed (uploaded, processing or failed: no rows of it are committed), dry_run_loaded_nothing,
 * rows_not_removable (mode upsert or replace), dataset_deleted (its table is gone).
 */
export async function removeUploadRows(db: Kysely<DB>, tenantId: string, id: string): Promise<{ repeated: boolean; body: RowsRemoved }> {
  // Read before locking: a load in progress holds the upload's row until it commits, and the answer
  // for an unfinished upload is known without waiting for it.
  const seen = await findForRemoval(db, tenantId, id, false);
  if (!seen) throw new AppError('not_found', 'upload not found');
  if (seen.rows_removed_at === null) assertRemovable(seen);
  return db.transaction().execute(async (trx) => {
    const row = await findForRemoval(trx, tenantId, id, true);
    if (!row) throw new AppError('not_found', 'upload not found');
    if (row.rows_removed_at !== null) return { repeated: true, body: answer(row, row.rows_removed_at, Number(row.rows_removed)) };
    assertRemovable(row);
    const table = await lockedTable(trx, tenantId, row.dataset);
    const deleted = await sql`DELETE FROM ${sql.raw(table)} WHERE upload_id = ${id}::uuid`.execute(trx);
    const rowsRemoved = Number(deleted.numAffectedRows ?? 0n);
    const marked = await trx
      .updateTable('uploads')
      .set({ rows_removed_at: sql<Date>`clock_timestamp()`, rows_removed: rowsRemoved, updated_at: sql<Date>`clock_timestamp()` })
      .where('id', '=', id)
      .returning('rows_removed_at')
      .executeTakeFirstOrThrow();
    const body = answer(row, marked.rows_removed_at!, rowsRemoved);
    const payload = { type: 'upload.rows_removed', uploadId: id, dataset: row.dataset, rowsRemoved, timestamp: body.rowsRemovedAt };
    // The upload's current attempt keys the event (outbox_events_once): one removal per upload.
    await sql`INSERT INTO outbox_events (tenant_id, event_type, upload_id, upload_attempt, payload, created_at)
              VALUES (${tenantId}, 'upload.rows_removed', ${id}, ${row.attempt},
                      ${JSON.stringify(payload)}::jsonb,
                      ${body.rowsRemovedAt}::timestamptz)
              ON CONFLICT ON CONSTRAINT outbox_events_once DO NOTHING`.execute(trx);
    return { repeated: false, body };
  });
}

type RemovalRow = { id: string; dataset: string; status: string; mode: string; dry_run: boolean; attempt: number; rows_removed_at: Date | null; rows_removed: number | null };

function findForRemoval(db: Kysely<DB>, tenantId: string, id: string, lock: boolean): Promise<RemovalRow | undefined> {
  const query = db
    .selectFrom('uploads')
    .select(['id', 'dataset', 'status', 'mode', 'dry_run', 'attempt', 'rows_removed_at', 'rows_removed'])
    .where('tenant_id', '=', tenantId)
    .where('id', '=', id);
  return (lock ? query.forUpdate() : query).executeTakeFirst();
}

function assertRemovable(row: RemovalRow): void {
  if (row.status !== 'completed') {
    throw new AppError('upload_not_completed', `the upload is ${row.status}: only a completed load has rows to remove`);
  }
  if (row.dry_run) throw new AppError('dry_run_loaded_nothing', 'the upload was a dry run (dryRun=true): it loaded no rows');
  if (row.mode !== 'append') {
    throw new AppError('rows_not_removable', `the upload was loaded with mode=${row.mode}: the rows it updated or replaced are not kept, so it cannot be undone row by row`);
  }
}

/**
 * The quoted table of the upload's dataset. A tenant's own dataset's definition is share-locked until
 * the transaction ends, so it cannot be deleted (its table dropped) meanwhile.
 */
async function lockedTable(trx: Kysely<DB>, tenantId: string, dataset: string): Promise<string> {
  const builtIn = getDataset(dataset);
  if (builtIn) return quoteIdentifier(builtIn.table);
  const found = await trx
    .selectFrom('datasets')
    .select('version')
    .where('tenant_id', '=', tenantId)
    .where('name', '=', dataset)
    .forShare()
    .executeTakeFirst();
  if (!found) throw new AppError('dataset_deleted', `dataset "${dataset}" was deleted, and the rows of this upload with its table`);
  return qualifiedTable(tenantSchema(tenantId), dataset);
}

function answer(row: RemovalRow, at: Date, rowsRemoved: number): RowsRemoved {
  return { uploadId: row.id, dataset: row.dataset, rowsRemoved, rowsRemovedAt: at.toISOString() };
}
