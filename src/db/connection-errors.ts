// Which errors mean "the database is unreachable right now" (as opposed to "this query is wrong").
// Pure: used by the HTTP error mapping (503 database_unavailable), the worker (a transient failure,
// retried) and the worker's queue supervisor.

/**
 * SQLSTATEs of a server going away or not accepting connections (PostgreSQL appendix A):
 * class 08 (connection exception), 57P01 admin_shutdown (a restart or `pg_terminate_backend`),
 * 57P02 crash_shutdown, 57P03 cannot_connect_now (starting up / shutting down), 53300 too_many_connections.
 */
const SQLSTATES = new Set(['57P01', '57P02', '57P03', '53300']);
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);
/** node-postgres reports a lost or refused connection by message only. */
const PG_MESSAGES = [
  'Connection terminated',
  'connection terminated',
  'Client has encountered a connection error',
  'timeout exceeded when trying to connect',
  'Query read timeout',
];

/**
 * True when `err` (or its `cause`) says the database connection failed, was refused or was cut.
 * An AWS SDK error (it carries `$metadata`) is never one: a refused object store is not the database.
 */
export function isConnectionError(err: unknown): boolean {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if ('$metadata' in e) return false;
    const { code, message } = e as { code?: unknown; message?: unknown };
    if (typeof code === 'string' && (SQLSTATES.has(code) || code.startsWith('08') || SOCKET_CODES.has(code))) return true;
    if (typeof message === 'string' && PG_MESSAGES.some((m) => message.includes(m))) return true;
    if (e instanceof AggregateError && e.errors.some((inner) => isConnectionError(inner))) return true;
  }
  return false;
}
