// Notifications of an upload, of an endpoint and of the tenant: read them with their attempts, list the
// failed ones (a pull endpoint for what never arrived), and ask for a redelivery.
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AppError } from '../../errors.ts';
import {
  findDelivery,
  listAttempts,
  listDeliveries,
  listUploadDeliveries,
  type AttemptRow,
  type DeliveryRow,
  type DeliveryStatus,
} from '../../notify/deliveries.repository.ts';
import { findEndpoint } from '../../notify/endpoints.repository.ts';
import { requestRedelivery } from '../../notify/redeliver.ts';
import { findUpload } from '../../uploads/uploads.repository.ts';
import type { AppDeps } from '../app.ts';
import { keysetPage, PageCursor, PageLimit, pageRequest } from '../pagination.ts';
import { errors, UploadIdParams } from '../schemas.ts';
import { uploadIdParam } from './uploads.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

type IdParams = { Params: { id: string } };

const DeliveryStatusParam = Type.Union(
  [Type.Literal('pending'), Type.Literal('sent'), Type.Literal('failed'), Type.Literal('skipped')] satisfies {
    const: DeliveryStatus;
  }[],
);
const ListQuery = Type.Object({
  status: Type.Optional(DeliveryStatusParam),
  limit: Type.Optional(PageLimit),
  cursor: Type.Optional(PageCursor),
});

const nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);
const Timestamp = Type.String({ format: 'date-time' });

const DeliveryBody = Type.Object({
  deliveryId: Type.String({ format: 'uuid', description: 'also the webhook-id header, stable across retries' }),
  eventId: Type.String({ format: 'uuid', description: 'the event it delivers (one event: one delivery per target)' }),
  endpointId: nullable(Type.String({ format: 'uuid', description: "the endpoint it goes to; null: the upload's callbackUrl (or a deleted endpoint)" })),
  uploadId: nullable(Type.String({ format: 'uuid' })),
  uploadAttempt: nullable(Type.Integer({ description: 'the processing attempt that produced this notification; null for an operational event' })),
  event: Type.String({ description: 'upload.processing | upload.completed | upload.failed | endpoint.disabled (GET /event-types)' }),
  channel: Type.String({ description: 'webhook | slack | none' }),
  target: nullable(Type.String()),
  status: Type.String({ description: 'pending | sent | failed | skipped' }),
  attempts: Type.Integer(),
  nextAttemptAt: nullable(Timestamp),
  lastError: nullable(Type.String()),
  deliveredAt: nullable(Timestamp),
  createdAt: Timestamp,
  updatedAt: Timestamp,
  payload: Type.Object({}, { additionalProperties: true, description: 'the body sent (frozen when the upload finished)' }),
});

const AttemptBody = Type.Object({
  attempt: Type.Integer(),
  trigger: Type.String({ description: "scheduled | manual | probe (the one attempt an open endpoint's breaker lets through)" }),
  state: Type.Union([Type.Literal('started'), Type.Literal('succeeded'), Type.Literal('failed'), Type.Literal('interrupted')], {
    description:
      'started: recorded before the request was sent, no outcome yet (being sent now, or its dispatcher died and the next ' +
      'claim will close it as interrupted); interrupted: the dispatcher stopped before the outcome was known, so the ' +
      'receiver may have received it (counts against the retry budget); succeeded / failed: the outcome below',
  }),
  startedAt: Timestamp,
  finishedAt: nullable(Timestamp),
  durationMs: nullable(Type.Integer({ description: 'null until finished, and for an interrupted attempt (never measured)' })),
  responseStatus: nullable(Type.Integer()),
  responseExcerpt: nullable(Type.String({ description: 'first 2 KB of the response body' })),
  errorCode: nullable(Type.String({ description: 'timeout | connect_refused | dns | tls | reset | network | ssrf_blocked | http_3xx | http_4xx | http_5xx | build_failed | aborted (the receiver answered webhook-delivery: abort-message) | interrupted' })),
  errorMessage: nullable(Type.String()),
  nextAttemptAt: nullable(Timestamp),
});

const DeliveryWithHistory = Type.Composite([DeliveryBody, Type.Object({ history: Type.Array(AttemptBody) })]);
const DeliveryIdParams = Type.Object({ id: Type.String({ description: 'delivery id (uuid)' }) });
const EndpointIdParams = Type.Object({ id: Type.String({ description: 'endpoint id (uuid)' }) });

/** A malformed id can name no delivery: 404, like any id the caller cannot see. */
function deliveryIdParam(request: FastifyRequest<IdParams>): string {
  const { id } = request.params;
  if (!UUID.test(id)) throw new AppError('not_found', 'delivery not found');
  return id.toLowerCase();
}

export async function deliveryRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  const withHistory = async (rows: DeliveryRow[]) => {
    const attempts = await listAttempts(deps.pool, rows.map((r) => r.id));
    return rows.map((row) => ({
      ...presentDelivery(row),
      history: attempts.filter((a) => a.delivery_id === row.id).map(presentAttempt),
    }));
  };

  const uploadDeliveriesSchema = {
    tags: ['deliveries'],
    summary: "An upload's notifications, newest first, each with every attempt",
    params: UploadIdParams,
    response: { 200: Type.Object({ uploadId: Type.String(), items: Type.Array(DeliveryWithHistory) }), ...errors(401, 404) },
  };
  app.get<IdParams>('/uploads/:id/deliveries', { schema: uploadDeliveriesSchema }, async (request) => {
    const upload = await findUpload(deps.db, request.tenant.id, uploadIdParam(request));
    if (!upload) throw new AppError('not_found', 'upload not found');
    const rows = await listUploadDeliveries(deps.pool, request.tenant.id, upload.id);
    return { uploadId: upload.id, items: await withHistory(rows) };
  });

  const endpointDeliveriesSchema = {
    tags: ['endpoints'],
    summary: "An endpoint's delivery log, newest first, each with every attempt (keyset pagination with nextCursor; ?status= filters)",
    params: EndpointIdParams,
    querystring: ListQuery,
    response: {
      200: Type.Object({ endpointId: Type.String(), items: Type.Array(DeliveryWithHistory), nextCursor: nullable(Type.String()) }),
      ...errors(400, 401, 404),
    },
  };
  app.get<IdParams & { Querystring: Static<typeof ListQuery> }>('/endpoints/:id/deliveries', { schema: endpointDeliveriesSchema }, async (request) => {
    const { id } = request.params;
    const endpoint = UUID.test(id) ? await findEndpoint(deps.db, request.tenant.id, id.toLowerCase()) : undefined;
    if (!endpoint) throw new AppError('not_found', 'endpoint not found');
    const { status, limit, cursor } = request.query;
    const page = await keysetPage(
      pageRequest(limit, cursor),
      (p) => listDeliveries(deps.pool, request.tenant.id, { ...p, endpointId: endpoint.id, ...(status ? { status } : {}) }),
      (row) => row,
    );
    return { endpointId: endpoint.id, items: await withHistory(page.items), nextCursor: page.nextCursor };
  });

  const listSchema = {
    tags: ['deliveries'],
    summary: "The tenant's notifications, newest first (keyset pagination with nextCursor); ?status=failed pulls what never arrived",
    querystring: ListQuery,
    response: { 200: Type.Object({ items: Type.Array(DeliveryBody), nextCursor: nullable(Type.String()) }), ...errors(400, 401) },
  };
  app.get<{ Querystring: Static<typeof ListQuery> }>('/deliveries', { schema: listSchema }, async (request) => {
    const { status, limit, cursor } = request.query;
    return keysetPage(
      pageRequest(limit, cursor),
      (page) => listDeliveries(deps.pool, request.tenant.id, { ...page, ...(status ? { status } : {}) }),
      presentDelivery,
    );
  });

  const oneSchema = {
    tags: ['deliveries'],
    summary: 'One notification with every attempt',
    params: DeliveryIdParams,
    response: { 200: DeliveryWithHistory, ...errors(401, 404) },
  };
  app.get<IdParams>('/deliveries/:id', { schema: oneSchema }, async (request) => {
    const row = await findDelivery(deps.pool, request.tenant.id, deliveryIdParam(request));
    if (!row) throw new AppError('not_found', 'delivery not found');
    const [delivery] = await withHistory([row]);
    return delivery;
  });

  const redeliverSchema = {
    tags: ['deliveries'],
    summary: 'Send a notification again now (history kept; the next attempt is marked manual and gets a full retry schedule)',
    params: DeliveryIdParams,
    response: { 202: DeliveryBody, ...errors(401, 404, 409) },
  };
  app.post<IdParams>('/deliveries/:id/redeliver', { schema: redeliverSchema }, async (request, reply) => {
    const result = await requestRedelivery(deps.pool, request.tenant.id, deliveryIdParam(request));
    switch (result.outcome) {
      case 'not_found':
        throw new AppError('not_found', 'delivery not found');
      case 'no_target':
        throw new AppError('invalid_state', 'delivery has no target: the upload was sent without a callback, or its endpoint was deleted');
      case 'in_flight':
        throw new AppError('invalid_state', 'delivery is being attempted right now; try again in a few seconds');
      case 'queued':
        return reply.status(202).send(presentDelivery(result.delivery));
    }
  });
}

export function presentDelivery(row: DeliveryRow) {
  return {
    deliveryId: row.id,
    eventId: row.event_id,
    endpointId: row.endpoint_id,
    uploadId: row.upload_id,
    uploadAttempt: row.upload_attempt,
    event: row.event,
    channel: row.channel,
    target: row.target,
    status: row.delivery_status,
    attempts: row.attempts,
    nextAttemptAt: row.delivery_status === 'pending' ? row.next_attempt_at.toISOString() : null,
    lastError: row.last_error,
    deliveredAt: iso(row.delivered_at),
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
    payload: row.payload,
  };
}

function presentAttempt(row: AttemptRow) {
  return {
    attempt: row.attempt,
    trigger: row.trigger,
    state: attemptState(row),
    startedAt: row.started_at.toISOString(),
    finishedAt: iso(row.finished_at),
    durationMs: row.duration_ms,
    responseStatus: row.response_status,
    responseExcerpt: row.response_excerpt,
    errorCode: row.error_code,
    errorMessage: row.error_message,
    nextAttemptAt: iso(row.next_attempt_at),
  };
}

function attemptState(row: AttemptRow): 'started' | 'succeeded' | 'failed' | 'interrupted' {
  if (row.finished_at === null) return 'started';
  if (row.error_code === 'interrupted') return 'interrupted';
  return row.error_code === null ? 'succeeded' : 'failed';
}

function iso(value: Date | null): string | null {
  return value === null ? null : value.toISOString();
}
