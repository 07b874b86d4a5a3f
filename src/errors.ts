// The error table: every error a client can see has a stable code, an HTTP status and a message.

export const errorTable = {
  unauthorized: { status: 401, message: 'missing or invalid API key' },
  not_found: { status: 404, message: 'not found' },
  route_not_found: { status: 404, message: 'no such route' },
  validation_failed: { status: 400, message: 'request is invalid' },
  invalid_callback_url: { status: 400, message: 'callbackUrl must be an absolute http(s) URL of at most 2048 characters without credentials' },
  unknown_dataset: { status: 400, message: 'unknown dataset' },
  missing_file: { status: 400, message: 'multipart field "file" is required' },
  not_multipart: { status: 406, message: 'request must be multipart/form-data' },
  file_too_large: { status: 413, message: 'file exceeds the maximum upload size' },
  unsupported_media_type: { status: 415, message: 'file is not a CSV text file' },
  idempotency_key_reused: { status: 422, message: 'Idempotency-Key was already used with a different request' },
  invalid_idempotency_key: { status: 400, message: 'Idempotency-Key must be 1–255 printable characters' },
  upload_aborted: { status: 400, message: 'upload was interrupted before the file was complete' },
  upload_processing: { status: 409, message: 'upload is being processed' },
  invalid_state: { status: 409, message: 'upload is not in a state that allows this' },
  object_gone: { status: 410, message: 'the stored file is no longer available; upload it again' },
  storage_unavailable: { status: 503, message: 'object storage is unavailable' },
  database_unavailable: { status: 503, message: 'the database is unavailable; try again shortly' },
  internal: { status: 500, message: 'internal error' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof errorTable;

export class AppError extends Error {
  override name = 'AppError';
  readonly status: number;

  constructor(
    readonly code: ErrorCode,
    message?: string,
    options?: { cause?: unknown },
  ) {
    super(message ?? errorTable[code].message, options);
    this.status = errorTable[code].status;
  }
}

export function errorBody(code: string, message: string) {
  return { error: { code, message } };
}
