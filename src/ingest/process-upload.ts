// The `process-upload` task: object store → (gunzip) → CSV → validate → COPY, in one stream.pipeline
// with backpressure end to end; the rows, the final status and the outbox row commit in one transaction.
import { pipeline } from 'node:stream/promises';
import type { Readable, Writable } from 'node:stream';
import type { Task } from 'graphile-worker';
import type pg from 'pg';
import type { Logger } from '../logger.ts';
import { observeLoad } from '../metrics/index.ts';
import type { ObjectStore } from '../storage/object-store.ts';
import { copyStatement, createCopyTransform, type CopyTransform, type HeaderInfo } from './csv/index.ts';
import { CopySink } from './copy-sink.ts';
import { lockDatasetForLoad } from '../datasets/datasets.repository.ts';
import { compileDefinition } from '../datasets/definition.ts';
import { getDataset, type DatasetDef } from './datasets/index.ts';
import { mergeStaged, prepareMode, type MergeOutcome } from './load-modes.ts';
import { judgeDryRun, prepareDryRun } from './dry-run.ts';
import { asGzipFailure, decodingFor, GZIP_MAGIC, peekHead, type Decoding, type DecompressionLimits } from './decompress.ts';
import { asPermanent, PermanentFailure, StaleRun } from './failures.ts';
import { RejectRecorder } from './rejects.ts';
import {
  claimUpload,
  completeUpload,
  endLoadBackend,
  failUpload,
  holdsJob,
  markObjectDeleted,
  recordLoadBackend,
  reportProgress,
  type ClaimedUpload,
  type Counts,
} from './upload-state.ts';

export interface ProcessDeps {
  pool: pg.Pool;
  store: ObjectStore;
  logger: Logger;
  /** GZIP_MAX_RATIO / GZIP_MAX_UNCOMPRESSED_BYTES: what a gzip file may expand to */
  gzip: DecompressionLimits;
  progressIntervalMs?: number;
  rejectCap?: number;
  /**
   * Aborted when this worker can no longer vouch for its jobs (its lease is about to lapse): the run
   * stops, rolls back and throws StaleRun, since another worker will take the job over.
   */
  abortSignal?: AbortSignal;
  /** test hooks: observe the object-store read, or wrap the COPY destination (e.g. to throttle it) */
  wrapSource?: (body: Readable) => Readable;
  wrapSink?: (sink: CopySink) => Writable;
}

export function assertPayload(payload: unknown): { uploadId: string } {
  const id = (payload as { uploadId?: unknown } | null)?.uploadId;
  if (typeof id !== 'string' || !/^[0-9a-f-]{36}$/i.test(id)) {
    throw new Error(`process-upload: invalid payload ${JSON.stringify(payload)}`);
  }
  return { uploadId: id };
}

export function createProcessUploadTask(deps: ProcessDeps): Task {
  return async (payload, helpers) => {
    const { uploadId } = assertPayload(payload);
    const { job } = helpers;
    if (deps.abortSignal?.aborted) throw new StaleRun(`job ${job.id}: this worker's lease lapsed before the run began`);
    const claimed = await claimUpload(deps.pool, uploadId);
    if (!claimed) {
      // Final or gone: returning deletes the job — only right if the job is still ours (stale-run rule).
      if (!(await holdsJob(deps.pool, job.id, job.locked_by))) {
        throw new StaleRun(`job ${job.id} for upload ${uploadId} is no longer held by this worker`);
      }
      helpers.logger.info(`upload ${uploadId} is already final or gone; nothing to do`);
      return;
    }
    const { previousBackend, ...upload } = claimed;
    const log = deps.logger.child({ uploadId, attempt: upload.attempt, jobAttempt: job.attempts });
    if (previousBackend) {
      // The previous attempt's worker was presumed dead; if it is only frozen, its open transaction
      // would block this attempt's COPY on every row it copied. End it.
      const ended = await endLoadBackend(deps.pool, previousBackend).catch((err: unknown) => {
        log.warn({ err, pid: previousBackend.pid }, 'could not end the previous attempt\'s load backend');
        return false;
      });
      if (ended) log.warn({ pid: previousBackend.pid }, 'ended the previous attempt\'s load backend');
      else log.info({ pid: previousBackend.pid }, 'the previous attempt\'s load backend is gone');
    }
    log.info('processing started');
    const progress: Progress = { rowsProcessed: 0, rowsFailed: 0, bytesProcessed: 0, uncompressedBytesProcessed: 0, compression: null, csvHeader: null };
    try {
      const result = await observeLoad(() => load(deps, upload, progress, log));
      log.info({ ...result }, 'processing completed');
    } catch (err) {
      if (err instanceof StaleRun) throw err;
      if (deps.abortSignal?.aborted) throw new StaleRun(`upload ${upload.id}: attempt ${upload.attempt} aborted, this worker's lease is lapsing`, { cause: err });
      const permanent = asPermanent(err);
      const lastAttempt = job.attempts >= job.max_attempts;
      if (!permanent && !lastAttempt) {
        log.warn({ err }, 'processing failed; the job will be retried');
        throw err;
      }
      const failure = permanent ?? new PermanentFailure('processing_failed', `gave up after ${job.attempts} attempts: ${(err as Error).message}`);
      log.info({ code: failure.code, message: failure.message }, 'upload failed');
      // Throws StaleRun if another attempt took over meanwhile; if it throws otherwise on the last
      // attempt, the lifecycle sweep marks the upload failed (worker_lost).
      await failUpload(deps.pool, upload, { code: failure.code, message: failure.message, csvHeader: progress.csvHeader }, progress);
    }
  };
}

type Progress = Counts & { csvHeader: string | null };

async function load(deps: ProcessDeps, upload: ClaimedUpload, progress: Progress, log: Logger) {
  // A built-in dataset is known here; a tenant's own is read (and share-locked) inside the load transaction.
  let dataset: DatasetDef | undefined = getDataset(upload.dataset);
  const rejects = new RejectRecorder(deps.pool, upload.id, deps.rejectCap ?? 10_000);
  await rejects.reset();

  let header: HeaderInfo | null = null;
  // Made once the dataset is known (in the load transaction for a tenant's own).
  let transform!: CopyTransform;
  const makeTransform = (def: DatasetDef) => createCopyTransform(def, {
    onHeader: (h) => {
      header = h;
      progress.csvHeader = h.text; // errors.csv starts with the header as the loader read it
    },
    onReject: (r) => {
      rejects.add(r);
      // maxErrors can be judged as soon as it is passed; the ratio needs the total (see below).
      if (upload.max_errors !== null && transform.stats.rowsRejected > upload.max_errors) {
        const err = budgetExceeded(`more than ${upload.max_errors} rows were rejected`);
        process.nextTick(() => transform.destroy(err));
      }
    },
  });

  const client = await deps.pool.connect();
  let broken = false;
  // Opened only once the database side is ready, and destroyed on every failure: a read stream that
  // is neither consumed nor destroyed keeps its socket, and the SDK's pool of sockets runs dry.
  let body: Readable | null = null;
  let timer: NodeJS.Timeout | undefined;
  try {
    // Outside the load transaction, so the attempt that may take over sees which backend to end.
    await recordLoadBackend(client, upload);
    await client.query('BEGIN');
    // The dataset table's upload_id DEFAULT reads this, so it is not sent with every row.
    await client.query(`SELECT set_config('app.upload_id', $1, true)`, [upload.id]);
    dataset ??= await tenantDataset(client, upload);
    transform = makeTransform(dataset);
    ({ body } = await deps.store.getStream(upload.object_key));
    const source = deps.wrapSource ? deps.wrapSource(body) : body;
    // The first bytes say whether the object is gzip; they stay in the stream for the pipeline.
    const decoding = decodingFor(await peekHead(source, GZIP_MAGIC.length, deps.abortSignal), deps.gzip);
    progress.compression = decoding.compression;
    if (decoding.compression !== 'none') log.info({ compression: decoding.compression }, 'decompressing while loading');
    // A dry run COPYs into a discarded copy of the table (dry-run.ts): the same validation, nothing loaded.
    const plan = upload.dry_run
      ? await prepareDryRun(client, dataset, upload.mode ?? 'append')
      : await prepareMode(client, dataset, upload.mode ?? 'append');
    const sink = new CopySink(client, () => copyStatement(plan.copyTarget, header!));
    const destination = deps.wrapSink ? deps.wrapSink(sink) : sink;
    timer = setInterval(() => {
      Object.assign(progress, countsOf(transform, decoding));
      reportProgress(deps.pool, upload.id, upload.attempt, progress).catch((err) => log.warn({ err }, 'progress update failed'));
    }, deps.progressIntervalMs ?? 1000);
    try {
      await pipeline([source, ...decoding.stages, transform, destination], { signal: deps.abortSignal });
    } catch (err) {
      throw asGzipFailure(err) ?? err;
    } finally {
      clearInterval(timer);
      Object.assign(progress, countsOf(transform, decoding));
    }
    await rejects.flush();

    const { rowsAccepted, records } = transform.stats;
    if (sink.rowCount !== rowsAccepted) {
      throw new Error(`COPY stored ${sink.rowCount} rows but ${rowsAccepted} were sent`);
    }
    let merged: MergeOutcome | null = null;
    const columns = (header as HeaderInfo | null)?.columns ?? [];
    if (plan.dryRun) merged = await judgeDryRun(client, dataset, plan.mode, columns, { uploadId: upload.id, rejectLimit: rejects.room });
    else if (plan.staged) merged = await mergeStaged(client, dataset, columns, { uploadId: upload.id, rejectLimit: rejects.room });
    if (merged) {
      // The later line of a repeated key moves from loaded to rejected: the line books still balance.
      progress.rowsProcessed -= merged.duplicates;
      progress.rowsFailed += merged.duplicates;
    }
    const rowsRejected = progress.rowsFailed;
    if (upload.max_errors !== null && rowsRejected > upload.max_errors) throw budgetExceeded(`more than ${upload.max_errors} rows were rejected`);
    if (upload.max_error_ratio !== null && records > 0 && rowsRejected / records > upload.max_error_ratio) {
      throw budgetExceeded(`${rowsRejected} of ${records} rows were rejected, over the allowed ratio ${upload.max_error_ratio}`);
    }
    await completeUpload(client, upload, {
      ...progress,
      rowsInserted: merged ? merged.inserted : plan.mode === 'replace' ? progress.rowsProcessed : null,
      rowsUpdated: merged ? merged.updated : plan.mode === 'replace' ? 0 : null,
      unknownColumns: (header as HeaderInfo | null)?.unknownColumns ?? [],
      csvHeader: progress.csvHeader,
    });
    await client.query('COMMIT');
  } catch (err) {
    clearInterval(timer);
    body?.destroy();
    // A failed COPY can leave the connection unusable, and an unreachable server never answers:
    // throw the connection away rather than return it to the pool.
    broken = !(await client.query(ROLLBACK).then(() => true, () => false));
    await rejects.flush().catch(() => {});
    throw err;
  } finally {
    client.release(broken);
  }

  // Committed. The object is no longer needed; if this delete fails, retention removes it later.
  await deps.store
    .delete(upload.object_key)
    .then(() => markObjectDeleted(deps.pool, upload.id))
    .catch((err) => log.warn({ err }, 'could not delete the processed object'));
  return { rows: progress.rowsProcessed, rejected: progress.rowsFailed, bytes: transform.stats.bytesIn };
}

/**
 * The tenant's dataset the upload names, at its current version, which the upload records in the load
 * transaction; the share lock holds off a change or delete of the definition until the load ends.
 */
async function tenantDataset(client: pg.PoolClient, upload: ClaimedUpload): Promise<DatasetDef> {
  const found = await lockDatasetForLoad(client, upload.tenant_id, upload.dataset);
  if (!found) throw new PermanentFailure('unknown_dataset', `dataset "${upload.dataset}" is not defined`);
  await client.query('UPDATE uploads SET dataset_version = $2 WHERE id = $1', [upload.id, found.version]);
  return compileDefinition(found.spec, upload.tenant_id, found.version);
}

/** node-postgres honours a per-query `query_timeout` (its types do not list it). */
const ROLLBACK: pg.QueryConfig & { query_timeout: number } = { text: 'ROLLBACK', query_timeout: 5000 };

/** bytesProcessed counts stored bytes (compressed, for a gzip file: progress is by them); uncompressed, the CSV's. */
function countsOf(transform: ReturnType<typeof createCopyTransform>, decoding: Decoding): Counts {
  return {
    rowsProcessed: transform.stats.rowsAccepted,
    rowsFailed: transform.stats.rowsRejected,
    bytesProcessed: decoding.storedBytes(transform.stats.bytesIn),
    uncompressedBytesProcessed: transform.stats.bytesIn,
    compression: decoding.compression,
  };
}

function budgetExceeded(detail: string): PermanentFailure {
  return new PermanentFailure('error_budget_exceeded', `error budget exceeded: ${detail}; no rows were loaded`);
}
