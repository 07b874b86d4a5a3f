// Which failures are the file's fault (permanent: mark the upload failed, do not retry) and which are
// the infrastructure's (transient: throw, and graphile-worker retries with backoff).
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
