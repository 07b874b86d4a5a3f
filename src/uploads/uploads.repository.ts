// SQL for uploads. Every read and write takes the caller's tenant id: another tenant's row is invisible.
import { sql, type Kysely, type Selectable, type Transaction } from 'kysely';
import type { DB, UploadStatus, UploadsTable } from '../db/schema.ts';
import { shareDatasetVersion } from '../datasets/datasets.repository.ts';
import { AppError } from '../errors.ts';
import { getDataset } from '../ingest/datasets/index.ts';
import { assertModeFits, type LoadMode } from './receive.ts';

export type UploadRow = Selectable<UploadsTable>;

export interface NewUpload {
  id: string;
  tenantId: string;
  dataset: string;
  /** append | upsert | replace (parseOptions checked it against a built-in dataset) */
  mode: LoadMode;
  /** validate in full, load nothing */
  dryRun: boolean;
  filename: string;
  sizeBytes: number;
  /** null when the bytes never passed through the API (a direct upload) */
  sha256: string | null;
  objectKey: string;
  callbackUrl: string | null;
  callbackChannel: 'webhook' | 'slack';
  maxErrors: number | null;
  maxErrorRatio: number | null;
}

export const PROCESS_UPLOAD_TASK = 'process-upload';

/**
 * Records the upload and enqueues its processing job in the caller's transaction, so there is
 * never an upload without its job, or a job without its upload.
 */
export async function insertUploadWithJob(trx: Transaction<DB>, upload: NewUpload, maxAttempts: number): Promise<void> {
  // A tenant's own dataset must exist now; its share lock keeps it from being deleted before this commits.
  let datasetVersion: number | null = null;
  if (!getDataset(upload.dataset)) {
    const shared = await shareDatasetVersion(trx, upload.tenantId, upload.dataset);
    if (!shared) throw new AppError('unknown_dataset', `unknown dataset "${upload.dataset}": define it with POST /datasets`);
    // A key cannot be removed (dataset_change_refused), so an upsert accepted now still has one when it loads.
    assertModeFits(upload.mode, upload.dataset, shared.key);
    datasetVersion = shared.version;
  }
  await trx
    .insertInto('uploads')
    .values({
      id: upload.id,
      tenant_id: upload.tenantId,
      dataset: upload.dataset,
      mode: upload.mode,
      dry_run: upload.dryRun,
      filename: upload.filename,
      size_bytes: upload.sizeBytes,
      sha256: upload.sha256,
      object_key: upload.objectKey,
      callback_url: upload.callbackUrl,
      callback_channel: upload.callbackChannel,
      max_errors: upload.maxErrors,
      max_error_ratio: upload.maxErrorRatio,
      dataset_version: datasetVersion,
    })
    .execute();
  await enqueueProcessing(trx, upload.id, maxAttempts);
}

export async function enqueueProcessing(trx: Transaction<DB>, uploadId: string, maxAttempts: number): Promise<void> {
  // job_key: at most one pending job per upload (a retry replaces, never doubles, a queued job).
  await sql`SELECT graphile_worker.add_job(
      ${PROCESS_UPLOAD_TASK},
      json_build_object('uploadId', ${uploadId}::text),
      max_attempts => ${maxAttempts}::int,
      job_key => ${'upload:' + uploadId}::text)`.execute(trx);
}

export async function findUpload(db: Kysely<DB>, tenantId: string, id: string): Promise<UploadRow | undefined> {
  return db.selectFrom('uploads').selectAll().where('tenant_id', '=', tenantId).where('id', '=', id).executeTakeFirst();
}

export async function listUploads(
  db: Kysely<DB>,
  tenantId: string,
  opts: { status?: UploadStatus; limit: number; beforeSeq?: number },
): Promise<UploadRow[]> {
  let query = db.selectFrom('uploads').selectAll().where('tenant_id', '=', tenantId);
  if (opts.status) query = query.where('status', '=', opts.status);
  if (opts.beforeSeq !== undefined) query = query.where('seq', '<', opts.beforeSeq);
  return query.orderBy('seq', 'desc').limit(opts.limit).execute();
}

export async function countByStatus(db: Kysely<DB>, tenantId: string): Promise<Record<UploadStatus, number>> {
  const rows = await db
    .selectFrom('uploads')
    .select(['status', (eb) => eb.fn.countAll<number>().as('count')])
    .where('tenant_id', '=', tenantId)
    .groupBy('status')
    .execute();
  const counts: Record<UploadStatus, number> = { uploaded: 0, processing: 0, completed: 0, failed: 0 };
  for (const row of rows) counts[row.status] = Number(row.count);
  return counts;
}

/**
 * Deletes the upload unless it is processing; returns what happened. The row lock makes the check
 * and the delete one step against a worker that is about to start.
 */
export async function deleteUploadUnlessProcessing(
  trx: Transaction<DB>,
  tenantId: string,
  id: string,
): Promise<{ outcome: 'deleted'; objectKey: string } | { outcome: 'not_found' | 'processing' }> {
  const row = await trx
    .selectFrom('uploads')
    .select(['status', 'object_key'])
    .where('tenant_id', '=', tenantId)
    .where('id', '=', id)
    .forUpdate()
    .executeTakeFirst();
  if (!row) return { outcome: 'not_found' };
  if (row.status === 'processing') return { outcome: 'processing' };
  await sql`SELECT graphile_worker.remove_job(${'upload:' + id}::text)`.execute(trx);
  await trx.deleteFrom('uploads').where('id', '=', id).execute();
  return { outcome: 'deleted', objectKey: row.object_key };
}
