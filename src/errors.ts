// The error table: every error a client can see has a stable code, an HTTP status and a message.
// Client mistakes are 4xx; only our own faults and unavailable dependencies are 5xx.

export const errorTable = {
  unauthorized: { status: 401, message: 'missing or invalid API key' },
  not_found: { status: 404, message: 'not found' },
  route_not_found: { status: 404, message: 'no such route' },
  validation_failed: { status: 400, message: 'request is invalid' },
  malformed_request: { status: 400, message: 'the request is not valid HTTP or its URL cannot be decoded' },
  malformed_json: { status: 400, message: 'the body is not valid JSON' },
  body_too_large: { status: 413, message: 'the request body exceeds the limit of this route' },
  unsupported_content_type: { status: 415, message: 'this route does not accept that Content-Type' },
  uri_too_long: { status: 414, message: 'a path parameter is too long' },
  headers_too_large: { status: 431, message: 'the request headers are too large' },
  request_timeout: { status: 408, message: 'the request headers were not received in time' },
  invalid_callback_url: { status: 400, message: 'callbackUrl must be an absolute http(s) URL of at most 2048 characters without credentials' },
  invalid_endpoint_url: { status: 400, message: 'url must be an absolute http(s) URL of at most 2048 characters without credentials' },
  email_not_configured: { status: 400, message: 'email endpoints need SMTP: this service has no SMTP_URL set' },
  unknown_dataset: { status: 400, message: 'unknown dataset' },
  invalid_dataset: { status: 400, message: 'the dataset definition is invalid' },
  dataset_exists: { status: 409, message: 'a dataset of that name exists; change it with PUT /datasets/:name' },
  dataset_change_refused: { status: 409, message: 'the change is not additive: it could drop, retype or invalidate loaded rows' },
  dataset_in_use: { status: 409, message: 'an upload that is not finished uses the dataset' },
  invalid_mode: { status: 400, message: 'mode must be append, upsert or replace' },
  mode_not_supported: { status: 400, message: 'the built-in dataset webhook_events is loaded with mode=append only' },
  dataset_has_no_key: { status: 400, message: 'mode=upsert needs a dataset with a key; add one with PUT /datasets/:name' },
  dataset_busy: { status: 409, message: 'the dataset is being loaded or changed; try again shortly' },
  sample_empty: { status: 400, message: 'the sample holds no complete line of CSV' },
  sample_no_header: { status: 400, message: 'the first line of the sample must be a header naming the columns' },
  missing_file: { status: 400, message: 'multipart field "file" is required' },
  not_multipart: { status: 406, message: 'request must be multipart/form-data' },
  malformed_multipart: { status: 400, message: 'the multipart/form-data body cannot be parsed' },
  file_too_large: { status: 413, message: 'file exceeds the maximum upload size' },
  unsupported_media_type: { status: 415, message: 'file is not a CSV text file' },
  idempotency_key_reused: { status: 422, message: 'Idempotency-Key was already used with a different request' },
  invalid_idempotency_key: { status: 400, message: 'Idempotency-Key must be 1–255 printable characters' },
  upload_aborted: { status: 400, message: 'upload was interrupted before the file was complete' },
  request_aborted: { status: 400, message: 'the client closed the connection before the request was complete' },
  body_idle_timeout: { status: 408, message: 'no byte of the request body arrived for too long; the request was cancelled' },
  invalid_parts: { status: 400, message: 'parts must list every part of the upload once, numbered 1 to partCount' },
  invalid_part: { status: 400, message: 'the store refused a part: not uploaded, or its ETag is not the one the store answered' },
  size_mismatch: { status: 400, message: 'the stored file is not the size declared; it was discarded: start a new upload' },
  direct_upload_expired: { status: 410, message: 'the direct upload expired before it was completed; start a new one' },
  upload_processing: { status: 409, message: 'upload is being processed' },
  upload_not_completed: { status: 409, message: 'the upload has not completed: it has no loaded rows to remove' },
  dry_run_loaded_nothing: { status: 409, message: 'the upload was a dry run: it loaded no rows' },
  rows_not_removable: { status: 409, message: 'an upsert or replace load cannot be undone row by row: the rows it updated or deleted are not kept' },
  dataset_deleted: { status: 409, message: 'the upload\'s dataset was deleted, its table and rows with it' },
  invalid_state: { status: 409, message: 'upload is not in a state that allows this' },
  object_gone: { status: 410, message: 'the stored file is no longer available; upload it again' },
  tus_version_unsupported: { status: 412, message: 'tus requests need the header Tus-Resumable: 1.0.0' },
  tus_invalid_request: { status: 400, message: 'the request does not follow the tus 1.0 protocol' },
  upload_length_exceeded: { status: 413, message: 'the request sends more bytes than the upload\'s Upload-Length' },
  upload_offset_conflict: { status: 409, message: 'Upload-Offset is not the offset of the upload; ask HEAD for it and resume from there' },
  upload_expired: { status: 410, message: 'the resumable upload expired or was removed; start a new one' },
  upload_locked: { status: 423, message: 'another request is writing to this upload; try again shortly' },
  too_many_uploads_in_flight: { status: 429, message: 'too many uploads of this tenant are being received at once' },
  upload_rate_limited: { status: 429, message: 'too many uploads by this tenant in the last minute' },
  token_rate_limited: { status: 429, message: 'too many tokens requested by this tenant in the last minute' },
  too_many_live_streams: { status: 429, message: 'too many live streams of this tenant are open' },
  storage_unavailable: { status: 503, message: 'object storage is unavailable' },
  database_unavailable: { status: 503, message: 'the database is unavailable; try again shortly' },
  internal: { status: 500, message: 'internal error' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof errorTable;

/**
 * Errors of Fastify and @fastify/multipart (their `code`) that a client causes, and the code each
 * one is answered with. Parser errors of busboy carry no code: see src/uploads/multipart-errors.ts.
 */
export const frameworkErrorCodes: Readonly<Record<string, ErrorCode>> = {
  FST_ERR_VALIDATION: 'validation_failed',
  FST_ERR_BAD_URL: 'malformed_request',
  FST_ERR_INVALID_URL: 'malformed_request',
  FST_ERR_MAX_PARAM_LENGTH: 'uri_too_long',
  FST_ERR_CTP_BODY_TOO_LARGE: 'body_too_large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_content_type',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'malformed_request',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'malformed_json',
  FST_ERR_CTP_INVALID_JSON_BODY: 'malformed_json',
  FST_ERR_ROUTE_MISSING_CONTENT_TYPE: 'unsupported_content_type',
  FST_ERR_ROUTE_MISSING_CONTENT: 'validation_failed',
  FST_REQ_FILE_TOO_LARGE: 'file_too_large',
  FST_INVALID_MULTIPART_CONTENT_TYPE: 'not_multipart',
  FST_INVALID_JSON_FIELD_ERROR: 'malformed_multipart',
  FST_PARTS_LIMIT: 'validation_failed',
  FST_FILES_LIMIT: 'validation_failed',
  FST_FIELDS_LIMIT: 'validation_failed',
  FST_PROTO_VIOLATION: 'validation_failed',
  FST_MP_PREMATURE_CLOSE: 'upload_aborted',
};

export class AppError extends Error {
  override name = 'AppError';
  readonly status: number;
  /** sent as `Retry-After` (seconds) when set: the client may try again then */
  readonly retryAfterSeconds: number | undefined;

  constructor(
    readonly code: ErrorCode,
    message?: string,
    options?: { cause?: unknown; retryAfterSeconds?: number },
  ) {
    super(message ?? errorTable[code].message, options);
    this.status = errorTable[code].status;
    this.retryAfterSeconds = options?.retryAfterSeconds;
  }
}

export function errorBody(code: string, message: string) {
  return { error: { code, message } };
}
