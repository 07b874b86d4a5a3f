// Direct-to-storage uploads: POST /uploads/direct hands out presigned part URLs, the client PUTs the
// parts to the object store, POST /uploads/:id/complete records the upload and enqueues it.
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { allowListOf } from '../../notify/ssrf.ts';
import { completeDirectUpload } from '../../uploads/direct-complete.ts';
import { startDirectUpload, type DirectDeps } from '../../uploads/direct-start.ts';
import type { RouteDeps } from '../app.ts';
import { errors, UploadIdParams } from '../schemas.ts';
import { uploadIdParam } from './uploads.ts';

const DirectUploadBody = Type.Object(
  {
    filename: Type.String({ minLength: 1, maxLength: 1024, description: 'shown in the upload\'s status (control characters removed, cut to 255)' }),
    size: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER, description: 'the file\'s exact size in bytes; over MAX_UPLOAD_BYTES → 413' }),
    dataset: Type.Optional(Type.String({ maxLength: 64, description: 'default webhook_events' })),
    mode: Type.Optional(Type.String({ maxLength: 16, description: 'append (default) | upsert (by the dataset\'s key) | replace (the dataset\'s rows); webhook_events: append only' })),
    dryRun: Type.Optional(Type.Boolean({ description: 'true: parse and validate in full (counts, errors.csv), load nothing (AIP-163 validate_only); default false' })),
    callbackUrl: Type.Optional(Type.String({ maxLength: 2048, description: 'absolute http(s) URL, no credentials, not a private address' })),
    callbackChannel: Type.Optional(Type.Union([Type.Literal('webhook'), Type.Literal('slack')])),
    maxErrors: Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER })),
    maxErrorRatio: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
  },
  { additionalProperties: false },
);

const UploadAcceptedBody = Type.Object({ uploadId: Type.String(), status: Type.Literal('uploaded'), statusUrl: Type.String() });

const DirectUploadStartedBody = Type.Object({
  uploadId: Type.String({ format: 'uuid' }),
  partSizeBytes: Type.Integer({ description: 'bytes of every part but the last, which holds the rest' }),
  partCount: Type.Integer({ minimum: 1, maximum: 10_000 }),
  expiresAt: Type.String({ format: 'date-time', description: 'the part URLs stop working then; an upload not completed by then is aborted' }),
  parts: Type.Array(
    Type.Object({ partNumber: Type.Integer({ minimum: 1 }), url: Type.String({ description: 'PUT the part\'s bytes here; keep the ETag response header' }) }),
  ),
  completeUrl: Type.String(),
  statusUrl: Type.String({ description: 'the upload\'s status once completed (404 until then)' }),
});

const CompleteBody = Type.Object(
  {
    parts: Type.Array(
      Type.Object(
        {
          partNumber: Type.Integer({ minimum: 1, maximum: 10_000 }),
          etag: Type.String({ minLength: 1, maxLength: 128, description: 'the ETag header the store answered the part\'s PUT with' }),
        },
        { additionalProperties: false },
      ),
      { minItems: 1, maxItems: 10_000, description: 'every part 1…partCount once, in any order' },
    ),
  },
  { additionalProperties: false },
);

export async function directUploadRoutes(app: FastifyInstance, deps: RouteDeps): Promise<void> {
  const direct: DirectDeps = {
    db: deps.db,
    store: deps.store,
    jobMaxAttempts: deps.config.worker.maxAttempts,
    allowedCidrs: allowListOf(deps.config.webhook.allowedCidrs),
    maxUploadBytes: deps.config.maxUploadBytes,
    expiryHours: deps.config.directUploads.expiryHours,
    partSizeBytes: deps.config.directUploads.partSizeBytes,
  };

  app.post<{ Body: Static<typeof DirectUploadBody> }>(
    '/uploads/direct',
    {
      schema: {
        tags: ['uploads'],
        summary: 'Start a direct-to-storage upload: presigned URLs to PUT the file\'s parts straight to the object store',
        description:
          'The options are those of POST /uploads. PUT each part to its URL (the ETag response header is its receipt), then ' +
          'POST /uploads/{id}/complete. Header `Idempotency-Key`: the same request again returns the same upload (201, fresh URLs) ' +
          'or, once completed, its acceptance (202), for 24 h.',
        body: DirectUploadBody,
        response: {
          201: DirectUploadStartedBody,
          202: UploadAcceptedBody,
          ...errors(400, 401, 410, 413, 415, 422, 429, 503),
        },
      },
      // Starting an upload counts against the tenant's uploads per minute, as POST /uploads does.
      preHandler: deps.limits.uploadRate,
    },
    async (request, reply) => {
      const idempotencyKey = request.headers['idempotency-key'];
      const outcome = await startDirectUpload(direct, {
        tenantId: request.tenant.id,
        body: request.body,
        idempotencyKey: Array.isArray(idempotencyKey) ? idempotencyKey[0] : idempotencyKey,
        log: request.log,
      });
      if (outcome.replayed) reply.header('idempotent-replayed', 'true');
      if (outcome.kind === 'accepted') return reply.status(202).header('location', outcome.body.statusUrl).send(outcome.body);
      return reply.status(201).send(outcome.body);
    },
  );

  app.post<{ Params: { id: string }; Body: Static<typeof CompleteBody> }>(
    '/uploads/:id/complete',
    {
      schema: {
        tags: ['uploads'],
        summary: 'Complete a direct upload: the store assembles the parts, the size is checked, the upload is queued',
        description:
          'Answers as POST /uploads (202, then GET /uploads/{id}). Completing again answers the same. A part missing or listed twice ' +
          '(invalid_parts) or refused by the store (invalid_part) → 400 and the upload stays pending; a stored size other than the ' +
          'declared one (size_mismatch, 400) or a file that is not CSV text (415) discards it; expired → 410.',
        params: UploadIdParams,
        body: CompleteBody,
        response: { 202: UploadAcceptedBody, ...errors(400, 401, 404, 410, 415, 503) },
      },
    },
    async (request: FastifyRequest<{ Params: { id: string }; Body: Static<typeof CompleteBody> }>, reply) => {
      const result = await completeDirectUpload(direct, {
        tenantId: request.tenant.id,
        id: uploadIdParam(request),
        parts: request.body.parts,
        log: request.log,
      });
      if (result.replayed) reply.header('idempotent-replayed', 'true');
      return reply.status(202).header('location', result.body.statusUrl).send(result.body);
    },
  );
}
