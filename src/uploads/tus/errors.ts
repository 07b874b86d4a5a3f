// What a client sees of a tus error: the status and stable code of the one error table
// (src/errors.ts), in the `{ error: { code, message } }` shape of every other route. @tus/server
// throws the objects of its ERRORS table (status_code + text body) or answers some requests itself
// (412 without Tus-Resumable, 400 for a malformed tus header): both are mapped here.
import { ERRORS } from '@tus/server';
import { isConnectionError } from '../../db/connection-errors.ts';
import { AppError, errorBody, errorTable, type ErrorCode } from '../../errors.ts';

/** Thrown by the Postgres locker when another process holds the upload (src/uploads/tus/locker.ts). */
export const UPLOAD_LOCKED = { status_code: 423, body: 'upload is locked by another request\n' };

const BY_TUS_ERROR = new Map<object, ErrorCode>([
  [ERRORS.MISSING_OFFSET, 'tus_invalid_request'],
  [ERRORS.INVALID_CONTENT_TYPE, 'tus_invalid_request'],
  [ERRORS.INVALID_LENGTH, 'tus_invalid_request'],
  [ERRORS.INVALID_METADATA, 'tus_invalid_request'],
  // extensions this server does not offer: the client's request, so 400 rather than tus's 501
  [ERRORS.UNSUPPORTED_CONCATENATION_EXTENSION, 'tus_invalid_request'],
  [ERRORS.UNSUPPORTED_CREATION_DEFER_LENGTH_EXTENSION, 'tus_invalid_request'],
  [ERRORS.UNSUPPORTED_EXPIRATION_EXTENSION, 'tus_invalid_request'],
  [ERRORS.FILE_NOT_FOUND, 'not_found'],
  [ERRORS.INVALID_OFFSET, 'upload_offset_conflict'],
  [ERRORS.FILE_NO_LONGER_EXISTS, 'upload_expired'],
  [ERRORS.ERR_SIZE_EXCEEDED, 'upload_length_exceeded'], // beyond the upload's own Upload-Length
  // beyond MAX_UPLOAD_BYTES
  [ERRORS.ERR_MAX_SIZE_EXCEEDED, 'file_too_large'],
  [ERRORS.INVALID_TERMINATION, 'invalid_state'],
  [ERRORS.ERR_LOCK_TIMEOUT, 'upload_locked'],
  [UPLOAD_LOCKED, 'upload_locked'],
  [ERRORS.ABORTED, 'request_aborted'],
]);

export interface TusPublicError {
  status: number;
  code: ErrorCode;
  message: string;
}

/** Maps anything a tus handler or hook threw to what the client may see (5xx only for our faults). */
export function tusPublicError(err: unknown): TusPublicError {
  const answer = (code: ErrorCode, message: string = errorTable[code].message) => ({ status: errorTable[code].status, code, message });
  if (err instanceof AppError) return answer(err.code, err.message);
  const known = typeof err === 'object' && err !== null ? BY_TUS_ERROR.get(err) : undefined;
  if (known) {
    const text = (err as { body?: unknown }).body;
    // tus's own texts name the header at fault; the not-found and locked ones are clearer in ours
    const message = known.startsWith('tus_') && typeof text === 'string' ? text.trim() : undefined;
    return answer(known, message);
  }
  if (isConnectionError(err)) return answer('database_unavailable');
  if (isStorageError(err)) return answer('storage_unavailable');
  return answer('internal');
}

/** The error answer for a response @tus/server wrote itself (no error object): by its status. */
export function tusPublicErrorForStatus(status: number, text: string): TusPublicError {
  if (status === 412) return { status, code: 'tus_version_unsupported', message: errorTable.tus_version_unsupported.message };
  if (status === 404) return { status, code: 'not_found', message: 'upload not found' };
  if (status >= 400 && status < 500) return { status: 400, code: 'tus_invalid_request', message: text.trim().slice(0, 200) || errorTable.tus_invalid_request.message };
  return { status: 500, code: 'internal', message: errorTable.internal.message };
}

export function tusErrorBody(error: TusPublicError): string {
  return JSON.stringify(errorBody(error.code, error.message));
}

/** An error of the S3 client: a service answer ($metadata) or a network failure reaching the store. */
function isStorageError(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  if ('$metadata' in err) return true;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND'].includes(code);
}
