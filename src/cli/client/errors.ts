// What the client commands can fail with, and the exit code each one means.

export const EXIT_OK = 0;
/** the API said no, the service could not be reached, or the upload ended `failed` */
export const EXIT_FAILED = 1;
/** the command line is wrong (unknown flag, missing argument, no API key, unreadable file) */
export const EXIT_USAGE = 2;

export class UsageError extends Error {
  override name = 'UsageError';
}

/** An error answer of the API: its stable code and message (see src/errors.ts), and the HTTP status. */
export class ApiError extends Error {
  override name = 'ApiError';

  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** The service could not be reached or the connection broke (code: the socket error, e.g. ECONNREFUSED). */
export class ConnectionError extends Error {
  override name = 'ConnectionError';

  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** An error response body → ApiError; a body that is not the API's `{ error: { code, message } }` still says something. */
export function apiErrorFrom(status: number, text: string): ApiError {
  try {
    const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    if (body.error && typeof body.error.code === 'string') {
      return new ApiError(status, body.error.code, typeof body.error.message === 'string' ? body.error.message : '');
    }
  } catch {
    // not JSON: a proxy's HTML page, say
  }
  const excerpt = text.replace(/\s+/g, ' ').trim().slice(0, 200);
  return new ApiError(status, `http_${status}`, excerpt || `HTTP ${status}`);
}
