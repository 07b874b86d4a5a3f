// /uploads — receive, read, list, count and delete uploads (all scoped to the caller's tenant).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { UploadStatus } from '../../db/schema.ts';
import { AppError, errorTable } from '../../errors.ts';
import { latestDeliverySummary } from '../../notify/deliveries.repository.ts';
import { allowListOf } from '../../notify/ssrf.ts';
import { isFinal, presentUpload } from '../../uploads/present.ts';
import { boundaryProblem } from '../../uploads/multipart-errors.ts';
import { receiveUpload } from '../../uploads/receive.ts';
import {
  countByStatus,
  deleteUploadUnlessProcessing,
  findUpload,
  listUploads,
} from '../../uploads/uploads.repository.ts';
import type { RouteDeps } from '../app.ts';
import { acquireOrRefuse } from '../limits.ts';
import { keysetPage, PageCursor, PageLimit, pageRequest } from '../pagination.ts';
import { Type, type Static } from '@sinclair/typebox';
import { errors, UploadIdParams, UploadStatusBody } from '../schemas.ts';
import { directUploadRoutes } from './direct-uploads.ts';
import { uploadProcessingRoutes } from './upload-processing.ts';
import { uploadRowsRoutes } from './upload-rows.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const UploadStatusParam = Type.Union(
  [Type.Literal('uploaded'), Type.Literal('processing'), Type.Literal('completed'), Type.Literal('failed')] satisfies {
    const: UploadStatus;
  }[],
);

/** The upload options as query parameters (the same names as form fields, which receiveUpload checks alike). */
const UploadOptionsQuery = Type.Object({
  dataset: Type.Optional(Type.String({ maxLength: 64, description: 'default webhook_events' })),
  mode: Type.Optional(Type.String({ maxLength: 16, description: 'append (default) | upsert (by the dataset\'s key) | replace (the dataset\'s rows); webhook_events: append only' })),
  dryRun: Type.Optional(Type.Boolean({ description: 'true: parse and validate in full (counts, errors.csv), load nothing (AIP-163 validate_only); default false' })),
  callbackUrl: Type.Optional(Type.String({ maxLength: 2048, description: 'absolute http(s) URL, no credentials, not a private address' })),
  callbackChannel: Type.Optional(Type.Union([Type.Literal('webhook'), Type.Literal('slack')])),
  maxErrors: Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER })),
  maxErrorRatio: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
});

type IdParams = { Params: { id: string } };

/** A malformed id can name no upload: 404, like any id the caller cannot see. */
export function uploadIdParam(request: FastifyRequest<IdParams>): string {
  const { id } = request.params;
  if (!UUID.test(id)) throw new AppError('not_found', 'upload not found');
  return id.toLowerCase();
}

export async function uploadRoutes(app: FastifyInstance, deps: RouteDeps): Promise<void> {
  const allowedCidrs = allowListOf(deps.config.webhook.allowedCidrs);
  const receive = async (request: FastifyRequest, reply: FastifyReply) => {
    if (!request.isMultipart()) throw new AppError('not_multipart');
    const problem = boundaryProblem(request.headers['content-type']);
    if (problem) throw new AppError('malformed_multipart', `${errorTable.malformed_multipart.message}: ${problem}`);
    // Held while the body is read and stored; given back however the request ends.
    const release = acquireOrRefuse(deps.limits.uploadsInFlight, request, 'too_many_uploads_in_flight');
    try {
      const idempotencyKey = request.headers['idempotency-key'];
      const result = await receiveUpload(
        { db: deps.db, store: deps.store, jobMaxAttempts: deps.config.worker.maxAttempts, allowedCidrs },
        {
          tenantId: request.tenant.id,
          parts: request.parts(),
          query: request.query as Record<string, unknown>,
          idempotencyKey: Array.isArray(idempotencyKey) ? idempotencyKey[0] : idempotencyKey,
          log: request.log,
        },
      );
      if (result.replayed) reply.header('idempotent-replayed', 'true');
      return reply.status(202).header('location', result.body.statusUrl).send(result.body);
    } finally {
      release();
    }
  };
  const receiveSchema = {
    tags: ['uploads'],
    summary: 'Upload a CSV (multipart/form-data): stored in object storage, then processed in the background',
    description:
      'Fields: `file` (required), `dataset` (default webhook_events), `mode` (append|upsert|replace, default append), `dryRun` (true: validate, load nothing), `callbackUrl`, `callbackChannel` (webhook|slack), ' +
      '`maxErrors`, `maxErrorRatio`; each may also be a query parameter. Header `Idempotency-Key` replays the first response for 24 h.',
    consumes: ['multipart/form-data'],
    querystring: UploadOptionsQuery,
    response: {
      202: Type.Object({ uploadId: Type.String(), status: Type.Literal('uploaded'), statusUrl: Type.String() }),
      ...errors(400, 401, 406, 408, 413, 415, 422, 429, 503),
    },
  };
  // One rate hook for both paths: the alias shares the tenant's allowance.
  const preHandler = deps.limits.uploadRate;
  app.post('/uploads', { schema: receiveSchema, preHandler }, receive);
  app.post('/upload', { schema: { ...receiveSchema, summary: 'Alias of POST /uploads (the specification\'s path)' }, preHandler }, receive);

  const status = async (request: FastifyRequest<IdParams>, reply: FastifyReply) => {
    const row = await findUpload(deps.db, request.tenant.id, uploadIdParam(request));
    if (!row) throw new AppError('not_found', 'upload not found');
    if (!isFinal(row)) reply.header('retry-after', '2');
    return { ...presentUpload(row), delivery: await latestDeliverySummary(deps.pool, row.tenant_id, row.id) };
  };
  const statusSchema = {
    tags: ['uploads'],
    summary: 'Status, counters and progress of an upload (Retry-After: 2 while not final)',
    params: UploadIdParams,
    response: { 200: Type.Ref(UploadStatusBody), ...errors(401, 404) },
  };
  app.get('/uploads/:id', { schema: statusSchema }, status);
  app.get('/upload/:id/status', { schema: { ...statusSchema, summary: 'Alias of GET /uploads/:id' } }, status);

  const counts = { uploaded: Type.Integer(), processing: Type.Integer(), completed: Type.Integer(), failed: Type.Integer() };
  const statsSchema = {
    tags: ['uploads'],
    summary: 'Number of uploads per status',
    response: { 200: Type.Object({ ...counts, total: Type.Integer() }), ...errors(401) },
  };
  app.get('/uploads/stats', { schema: statsSchema }, async (request) => {
    const counts = await countByStatus(deps.db, request.tenant.id);
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    return { ...counts, total };
  });

  const ListQuery = Type.Object({
    status: Type.Optional(UploadStatusParam),
    limit: Type.Optional(PageLimit),
    cursor: Type.Optional(PageCursor),
  });
  const listSchema = {
    tags: ['uploads'],
    summary: 'Uploads, newest first (keyset pagination with nextCursor)',
    querystring: ListQuery,
    response: {
      200: Type.Object({ items: Type.Array(Type.Ref(UploadStatusBody)), nextCursor: Type.Union([Type.String(), Type.Null()]) }),
      ...errors(400, 401),
    },
  };
  app.get<{ Querystring: Static<typeof ListQuery> }>('/uploads', { schema: listSchema }, async (request) => {
    const { status, limit, cursor } = request.query;
    return keysetPage(
      pageRequest(limit, cursor),
      (page) => listUploads(deps.db, request.tenant.id, { ...page, ...(status ? { status } : {}) }),
      presentUpload,
    );
  });

  const remove = async (request: FastifyRequest<IdParams>, reply: FastifyReply) => {
    const id = uploadIdParam(request);
    const result = await deps.db
      .transaction()
      .execute((trx) => deleteUploadUnlessProcessing(trx, request.tenant.id, id));
    if (result.outcome !== 'deleted') {
      throw result.outcome === 'processing'
        ? new AppError('upload_processing', 'upload is being processed; try again when it has finished')
        : new AppError('not_found', 'upload not found');
    }
    // The row is gone first: a failed object delete leaves an object no row references, which the
    // orphan sweep (retention/orphans.ts) removes — never a row pointing at nothing.
    await deps.store
      .delete(result.objectKey)
      .catch((err) => request.log.warn({ err, objectKey: result.objectKey }, 'object delete failed; left for the orphan sweep'));
    return reply.status(204).send();
  };
  app.delete(
    '/uploads/:id',
    {
      schema: {
        tags: ['uploads'],
        summary: 'Delete an upload and its stored file (409 while processing)',
        params: UploadIdParams,
        response: { 204: Type.Null(), ...errors(401, 404, 409) },
      },
    },
    remove,
  );

  await uploadProcessingRoutes(app, deps);
  await uploadRowsRoutes(app, deps);
  await directUploadRoutes(app, deps);
}
