// Which failures are the file's fault (permanent: mark the upload failed, do not retry) and which are
// the infrastructure's (transient: throw, and graphile-worker retries with backoff).
// A stale run (see StaleRun) is neither: it throws and records nothing.
import { CsvFileError } from './csv/index.ts';

export class PermanentFailure extends Error {
  override name = 'PermanentFailure';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** SQLSTATE classes that mean "this data can never load": retrying would fail the same way. */
const PERMANENT_SQLSTATE_CLASSES = ['22', '23'];

export function asPermanent(err: unknown): PermanentFailure | null {
  if (err instanceof PermanentFailure) return err;
  if (err instanceof CsvFileError) return new PermanentFailure(err.code, err.message);
  const e = err as { code?: unknown; name?: unknown; message?: unknown } | null;
  if (e && (e.name === 'NoSuchKey' || e.name === 'NotFound')) {
    return new PermanentFailure('object_missing', 'the stored file no longer exists');
  }
  if (e && typeof e.code === 'string' && e.code.length === 5 && PERMANENT_SQLSTATE_CLASSES.includes(e.code.slice(0, 2))) {
    return new PermanentFailure('database_rejected_data', `the database rejected the data: ${String(e.message)}`);
  }
  return null;
}

/**
 * The stale-run rule, defined once: a run that finds it is no longer the current attempt of its
 * upload (another attempt took over, its job lock was released, or its lease lapsed) throws this and
 * never returns normally. graphile-worker 0.17 deletes a job by id when its task returns — without
 * checking who holds it now, so a stale run returning would delete the job the current run works
 * on — but when the task throws it unlocks the job only `WHERE locked_by = <this worker>`, a no-op
 * for a job another worker holds. A StaleRun never marks the upload failed: the current attempt owns it.
 */
export class StaleRun extends Error {
  override name = 'StaleRun';
}
