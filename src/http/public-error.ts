// What a client sees of an error: its status, a stable code from the error table (src/errors.ts) and
// a message that names the client's mistake — never a stack, a file path or an internal detail.
// Also the answers given where Fastify's error handler is not involved: HTTP the parser rejects
// (clientError) and WebSocket handshakes `ws` refuses.
import http from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyError, FastifyRequest, FastifySchemaValidationError } from 'fastify';
import { isConnectionError } from '../db/connection-errors.ts';
import { AppError, errorBody, errorTable, frameworkErrorCodes, type ErrorCode } from '../errors.ts';
import { isClientAbort, multipartErrorCode } from '../uploads/multipart-errors.ts';

export interface PublicError {
  status: number;
  code: ErrorCode;
  message: string;
  /** the client went away before its request was complete: nobody reads the answer (log at info) */
  clientGone: boolean;
}

/** Maps anything thrown while serving `request` to what the client may see. */
export function toPublicError(err: FastifyError | AppError | Error, request: FastifyRequest): PublicError {
  // Gone: its connection is closed (an answer could not reach it), or it left while still sending.
  const clientGone = request.raw.socket?.destroyed === true || (!request.raw.complete && (request.raw.destroyed || isClientAbort(err)));
  const answer = (code: ErrorCode, message: string = errorTable[code].message): PublicError => ({
    status: errorTable[code].status,
    code,
    message,
    clientGone,
  });
  if (err instanceof AppError) return answer(err.code, err.message);
  const fastifyError = err as FastifyError;
  if (fastifyError.validation) return answer('validation_failed', err.message);
  const mapped = typeof fastifyError.code === 'string' ? frameworkErrorCodes[fastifyError.code] : undefined;
  // Messages of Fastify's and @fastify/multipart's coded errors describe the request, not our code.
  if (mapped) return answer(mapped, err.message);
  const multipart = multipartErrorCode(err);
  if (multipart) return answer(multipart);
  // Before the database check: a client closing its connection is an ECONNRESET too.
  if (clientGone) return answer('request_aborted');
  // The database restarting or out of reach is not a bug of ours: 503, and the client may retry.
  if (isConnectionError(err)) return answer('database_unavailable');
  const status = fastifyError.statusCode ?? 500;
  // secure-json-parse (Fastify's JSON parser) throws a SyntaxError it marks 400: a bad body.
  if (status === 400 && err instanceof SyntaxError) return answer('malformed_json');
  // Any other error Fastify marks as the client's: its status class, our generic code for it.
  if (status >= 400 && status < 500) return answer(status === 413 ? 'body_too_large' : 'validation_failed', err.message);
  return answer('internal');
}

/**
 * Fastify's `schemaErrorFormatter`: `limit must be <= 100`, `status must be one of uploaded, …`
 * rather than Ajv's list of every branch of a union.
 */
export function formatSchemaErrors(errors: FastifySchemaValidationError[], dataVar: string): Error {
  const byPath = new Map<string, { allowed: unknown[]; messages: string[] }>();
  for (const e of errors) {
    const field = e.instancePath.replace(/^\//, '').replaceAll('/', '.') || dataVar;
    const entry = byPath.get(field) ?? { allowed: [], messages: [] };
    byPath.set(field, entry);
    if (e.keyword === 'const') entry.allowed.push((e.params as { allowedValue?: unknown }).allowedValue);
    else if (e.keyword !== 'anyOf') entry.messages.push(`${field} ${e.message ?? 'is invalid'}`);
  }
  const parts = [...byPath].flatMap(([field, { allowed, messages }]) =>
    allowed.length > 0 ? [`${field} must be one of ${allowed.join(', ')}`, ...messages] : messages,
  );
  return new Error(parts.join('; ') || `${dataVar} is invalid`);
}

/** The raw HTTP answer to a request Node's parser refused: our error shape, then the socket closes. */
export function clientErrorResponse(err: NodeJS.ErrnoException): string {
  const code: ErrorCode =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? 'headers_too_large'
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? 'request_timeout'
        : 'malformed_request';
  return rawResponse(errorTable[code].status, code, errorTable[code].message);
}

/** Fastify's `clientErrorHandler`: answers in our error shape (when the socket still takes it) and closes. */
export function onClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (err.code !== 'ECONNRESET' && !socket.destroyed && socket.writable) socket.write(clientErrorResponse(err));
  socket.destroy();
}

/** `ws`'s `wsClientError`: a WebSocket handshake it refuses (bad key, version …) answered in our error shape. */
export function onWebSocketClientError(err: Error, socket: Duplex): void {
  if (!socket.destroyed && socket.writable) {
    socket.write(rawResponse(400, 'validation_failed', `invalid WebSocket handshake: ${err.message}`));
  }
  socket.destroy();
}

function rawResponse(status: number, code: ErrorCode, message: string): string {
  const body = JSON.stringify(errorBody(code, message));
  return (
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`
  );
}
