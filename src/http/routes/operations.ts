// Recovery of an endpoint as a long-running operation (Google AIP-151): POST /endpoints/:id/recover
// answers 202 with the operation and `Location: /operations/:id`; GET /operations/:id reports it
// until `done`. Both scoped to the caller's tenant: another tenant's endpoint or operation is a 404.
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { AppError } from '../../errors.ts';
import { findOperation, startRecovery, type OperationRow } from '../../notify/recover.ts';
import type { AppDeps } from '../app.ts';
import { errors } from '../schemas.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** RFC 3339 date-time: a full date, a time and an offset (Z or ±hh:mm); fractions of a second allowed. */
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;
const Timestamp = Type.String({ format: 'date-time' });

const RecoverBody = Type.Object(
  {
    since: Type.String({ maxLength: 64, description: 'RFC 3339; events that happened at or after it (not older than RETENTION_DAYS)' }),
    until: Type.Optional(Type.String({ maxLength: 64, description: 'RFC 3339; events that happened before it; default: now' })),
  },
  { additionalProperties: false },
);

const OperationBody = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    name: Type.String({ description: 'operations/<id> (AIP-151)' }),
    done: Type.Boolean({ description: 'false while the background job has not run; then true with result or error' }),
    metadata: Type.Object({
      kind: Type.Literal('endpoint.recover'),
      endpointId: Type.String({ format: 'uuid' }),
      since: Timestamp,
      until: Timestamp,
      queued: Type.Integer({ minimum: 0, description: 'deliveries queued so far' }),
      createdAt: Timestamp,
      finishedAt: Type.Union([Timestamp, Type.Null()]),
    }),
    result: Type.Optional(
      Type.Object({ queued: Type.Integer({ minimum: 0, description: 'failed deliveries queued again + missed deliveries created' }) }),
    ),
    error: Type.Optional(Type.Object({ code: Type.String(), message: Type.String() })),
  },
  { description: 'A long-running operation (Google AIP-151)' },
);

const IdParams = Type.Object({ id: Type.String({ description: 'uuid' }) });
type Params = { Params: Static<typeof IdParams> };

/** An RFC 3339 timestamp, or 400 validation_failed naming the field. */
function timestampOf(field: string, raw: string): Date {
  const ms = RFC3339.test(raw) ? Date.parse(raw) : Number.NaN;
  if (Number.isNaN(ms)) throw new AppError('validation_failed', `${field} must be an RFC 3339 timestamp such as 2026-01-31T12:00:00Z`);
  return new Date(ms);
}

export async function operationRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  const retentionMs = deps.config.retentionDays * 86_400_000;

  const recoverSchema = {
    tags: ['endpoints'],
    summary:
      'Recover an endpoint: queue again its failed deliveries whose event happened in [since, until), and create those it never got; ' +
      '202 with the operation (Location: /operations/:id)',
    params: IdParams,
    body: RecoverBody,
    response: { 202: OperationBody, ...errors(400, 401, 404) },
  };
  app.post<Params & { Body: Static<typeof RecoverBody> }>('/endpoints/:id/recover', { schema: recoverSchema }, async (request, reply) => {
    const { id } = request.params;
    if (!UUID.test(id)) throw new AppError('not_found', 'endpoint not found');
    const since = timestampOf('since', request.body.since);
    const now = Date.now();
    const until = request.body.until === undefined ? new Date(now) : timestampOf('until', request.body.until);
    if (since.getTime() >= until.getTime()) throw new AppError('validation_failed', 'since must be before until');
    // Older events and their deliveries may already be purged: a window reaching there would silently recover less.
    if (since.getTime() < now - retentionMs) {
      throw new AppError('validation_failed', `since must be within the retention period (RETENTION_DAYS = ${deps.config.retentionDays})`);
    }
    const client = await deps.pool.connect();
    let operation: OperationRow | undefined;
    try {
      await client.query('BEGIN');
      // Shared lock: a concurrent DELETE of the endpoint waits for the operation to be written.
      const { rows } = await client.query(`SELECT 1 FROM endpoints WHERE tenant_id = $1 AND id = $2 FOR SHARE`, [request.tenant.id, id]);
      if (rows.length > 0) operation = await startRecovery(client, request.tenant.id, id.toLowerCase(), { since, until });
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      client.release();
    }
    if (!operation) throw new AppError('not_found', 'endpoint not found');
    request.log.info({ endpointId: id, operationId: operation.id }, 'endpoint recovery accepted');
    return reply.status(202).header('location', `/operations/${operation.id}`).send(presentOperation(operation));
  });

  const operationSchema = {
    tags: ['endpoints'],
    summary: 'A long-running operation (AIP-151): poll until done',
    params: IdParams,
    response: { 200: OperationBody, ...errors(401, 404) },
  };
  app.get<Params>('/operations/:id', { schema: operationSchema }, async (request) => {
    const { id } = request.params;
    const row = UUID.test(id) ? await findOperation(deps.pool, request.tenant.id, id.toLowerCase()) : undefined;
    if (!row) throw new AppError('not_found', 'operation not found');
    return presentOperation(row);
  });
}

/** The AIP-151 shape: `result` once done without error, `error` once done with one. */
export function presentOperation(row: OperationRow) {
  return {
    id: row.id,
    name: `operations/${row.id}`,
    done: row.done,
    metadata: {
      kind: row.kind,
      endpointId: row.endpoint_id,
      since: row.since.toISOString(),
      until: row.until.toISOString(),
      queued: row.queued ?? 0,
      createdAt: row.created_at.toISOString(),
      finishedAt: row.finished_at?.toISOString() ?? null,
    },
    ...(row.done && row.error_code === null && { result: { queued: row.queued ?? 0 } }),
    ...(row.error_code !== null && { error: { code: row.error_code, message: row.error_message ?? '' } }),
  };
}
