// The multipart parser under @fastify/multipart (busboy, with dicer) reports a malformed or cut body
// with plain Errors that carry no code, only a message: this module names them once, so a client's
// broken body is a 400 with a stable code instead of a 500. Pure: no I/O.
import { AppError, errorTable, type ErrorCode } from '../errors.ts';

/** The body ended (Content-Length reached, or the last chunk) before the closing boundary. */
const CUT_BODY = [/^Unexpected end of multipart data$/, /terminated early due to unexpected end of multipart data$/];

/** The Content-Type or the body cannot be parsed as multipart/form-data at all. */
const MALFORMED = [
  /^Multipart: Boundary not found$/,
  /^Boundary required$/,
  /^Unsupported Content-Type\.$/,
  /^Missing Content-Type-header\.$/,
  // the boundary becomes a search needle of at most 256 bytes (RFC 2046 allows 70 characters)
  /^The needle cannot (be an empty String\/Buffer|have a length bigger than 256)\.$/,
];

/**
 * The stable code for an error raised while parsing a multipart request, or null when it is not
 * one of the parser's: a malformed body is `malformed_multipart`, a body cut before its closing
 * boundary or a client that closed the connection mid-body is `upload_aborted`.
 */
export function multipartErrorCode(err: unknown): ErrorCode | null {
  if (!(err instanceof Error) || err instanceof AppError) return null;
  if (isClientAbort(err)) return 'upload_aborted';
  if ((err as { code?: unknown }).code !== undefined) return null;
  if (CUT_BODY.some((re) => re.test(err.message))) return 'upload_aborted';
  if (MALFORMED.some((re) => re.test(err.message))) return 'malformed_multipart';
  return null;
}

/** Node's error on a request whose client closed the connection before the body was complete. */
export function isClientAbort(err: unknown): boolean {
  return err instanceof Error && (err as { code?: unknown }).code === 'ECONNRESET' && err.message === 'aborted';
}

/** `err` as the AppError a client should see when it is a parser error (the original as its cause), else `err`. */
export function asMultipartError(err: unknown): unknown {
  const code = multipartErrorCode(err);
  if (!code) return err;
  // busboy's messages name what is wrong with the body and nothing of ours: safe to pass on
  const message = code === 'malformed_multipart' ? `${errorTable[code].message} (${(err as Error).message})` : undefined;
  return new AppError(code, message, { cause: err });
}

/**
 * What is wrong with the boundary of a multipart Content-Type, or null: RFC 2046 §5.1.1 wants 1–70
 * characters. Checked before parsing, so a missing or empty boundary is named as such rather than
 * surfacing as a body that "ended early".
 */
export function boundaryProblem(contentType: string | undefined): string | null {
  const match = /;\s*boundary\s*=\s*(?:"([^"]*)"|([^;\s]*))/i.exec(contentType ?? '');
  if (!match) return 'the Content-Type has no boundary parameter';
  const boundary = match[1] ?? match[2] ?? '';
  if (boundary.length === 0) return 'the boundary is empty';
  if (boundary.length > 70) return 'the boundary is longer than 70 characters (RFC 2046)';
  return null;
}
