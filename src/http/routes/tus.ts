// /files — resumable uploads (tus 1.0: core, creation, creation-with-upload, creation-defer-length,
// termination, expiration) by @tus/server. Requests go to it as they are, body unread; its answers
// go back as they are, except errors, which take the shape and stable codes of every other route.
// Same bearer authentication as the rest of the API, except OPTIONS (tus discovery and CORS
// preflight carry no credentials).
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { NodeRequest, sendNodeResponse } from 'srvx/node';
import { createPool } from '../../db/pool.ts';
import { allowListOf } from '../../notify/ssrf.ts';
import { tusErrorBody, tusPublicError, tusPublicErrorForStatus } from '../../uploads/tus/errors.ts';
import { createTusEndpoint } from '../../uploads/tus/server.ts';
import type { RouteDeps } from '../app.ts';
import { requireApiKey } from '../auth.ts';
import { acquireOrRefuse } from '../limits.ts';
import { errors, UploadIdParams } from '../schemas.ts';

/** Where the endpoint is mounted. */
export const TUS_PATH = '/files';
/** Connections for held upload locks: one per tus request in progress on an upload. */
const LOCK_CONNECTIONS = 50;

const TUS_HEADERS =
  'Every request but OPTIONS sends `Tus-Resumable: 1.0.0` (else 412 tus_version_unsupported). ' +
  '`HEAD /files/{id}` answers `Upload-Offset` and `Upload-Length` (resume from that offset). ';

/**
 * Registers the tus endpoint at /files and, while the app runs, the sweep that removes expired
 * unfinished uploads (their parts aborted, `.info`/`.part` deleted) every TUS_SWEEP_INTERVAL_SECONDS.
 */
export async function tusRoutes(app: FastifyInstance, deps: RouteDeps): Promise<void> {
  const lockPool = createPool(String(deps.pool.options.connectionString), 'stream-api:tus-locks', LOCK_CONNECTIONS);
  const tus = createTusEndpoint({
    db: deps.db,
    store: deps.store,
    lockPool,
    logger: deps.logger,
    path: TUS_PATH,
    publicUrl: deps.config.publicUrl,
    maxUploadBytes: deps.config.maxUploadBytes,
    expiryMs: deps.config.tus.expirySeconds * 1000,
    jobMaxAttempts: deps.config.worker.maxAttempts,
    allowedCidrs: allowListOf(deps.config.webhook.allowedCidrs),
  });
  const sweep = setInterval(() => {
    tus.server
      .cleanUpExpiredUploads()
      .then((deleted) => deleted > 0 && deps.logger.info({ deleted }, 'tus: expired unfinished uploads removed'))
      .catch((err: unknown) => deps.logger.warn({ err }, 'tus: removing expired uploads failed; the next sweep tries again'));
  }, deps.config.tus.sweepIntervalSeconds * 1000);
  sweep.unref();
  app.addHook('onClose', async () => {
    clearInterval(sweep);
    await lockPool.end();
  });

  // The body is the upload's bytes, read by @tus/server: no parser of this scope may touch it.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, _payload, done) => done(null));

  const serve = async (request: FastifyRequest, reply: FastifyReply, release?: () => void) => {
    reply.hijack();
    if (release) reply.raw.once('close', release);
    const webRequest = new NodeRequest({ req: request.raw, res: reply.raw });
    if (request.tenant) tus.contexts.set(webRequest, { tenantId: request.tenant.id, log: request.log });
    let response: Response;
    try {
      response = await publicResponse(await tus.server.handleWeb(webRequest));
    } catch (err) {
      request.log.error({ err }, 'tus request failed');
      response = errorResponse(tusPublicError(err), new Headers({ connection: 'close' }));
    }
    await sendNodeResponse(reply.raw, response);
  };
  const holdingUploadSlot = (request: FastifyRequest, reply: FastifyReply) =>
    serve(request, reply, acquireOrRefuse(deps.limits.uploadsInFlight, request, 'too_many_uploads_in_flight'));

  const options = {
    tags: ['uploads (tus)'],
    summary: 'tus discovery: Tus-Version, Tus-Extension, Tus-Max-Size (no authentication)',
    security: [],
    response: { 204: Type.Null() },
  };
  app.options(TUS_PATH, { schema: options }, (request, reply) => serve(request, reply));
  app.options(`${TUS_PATH}/`, { schema: { ...options, summary: 'Alias of OPTIONS /files' } }, (request, reply) => serve(request, reply));
  app.options(`${TUS_PATH}/:id`, { schema: { ...options, params: UploadIdParams } }, (request, reply) => serve(request, reply));

  await app.register(async (authed) => {
    requireApiKey(authed, deps.db);
    const creation = {
        preHandler: deps.limits.uploadRate,
        schema: {
          tags: ['uploads (tus)'],
          summary: 'Create a resumable upload (tus creation); 201 with Location: /files/{id}',
          description:
            TUS_HEADERS +
            'Headers: `Upload-Length` (bytes, ≤ MAX_UPLOAD_BYTES, else 413) or `Upload-Defer-Length: 1`; `Upload-Metadata` ' +
            '(base64 values): `filename`, `dataset`, `mode`, `dryRun`, `callbackUrl`, `callbackChannel`, `maxErrors`, `maxErrorRatio`, ' +
            '`idempotencyKey` (or the `Idempotency-Key` header). A body of type application/offset+octet-stream is the first bytes.',
          response: { 201: Type.Null(), ...errors(400, 401, 409, 412, 413, 415, 422, 429, 503) },
        },
      };
    authed.post(TUS_PATH, creation, holdingUploadSlot);
    // tus clients are often given the endpoint with a trailing slash (tus-js-client's examples are)
    const alias = { ...creation.schema, summary: 'Alias of POST /files (the endpoint with a trailing slash)' };
    authed.post(`${TUS_PATH}/`, { ...creation, schema: alias }, holdingUploadSlot);
    // HEAD answers carry no body: left out of the OpenAPI document (described with PATCH).
    authed.route({ method: 'HEAD', url: `${TUS_PATH}/:id`, schema: { hide: true, params: UploadIdParams }, handler: (request, reply) => serve(request, reply) });
    authed.patch(
      `${TUS_PATH}/:id`,
      {
        schema: {
          tags: ['uploads (tus)'],
          summary: 'Append bytes at Upload-Offset (Content-Type: application/offset+octet-stream); 204 with the new Upload-Offset',
          description:
            TUS_HEADERS +
            'A wrong offset is 409 upload_offset_conflict; an expired upload 410; an upload another request is writing 423 upload_locked. ' +
            'The request that completes the upload records it and queues its processing: its answer carries `Upload-Id` ' +
            'and `Upload-Status-Url` (`/uploads/{id}`, the same resource as for POST /uploads).',
          params: UploadIdParams,
          response: { 204: Type.Null(), ...errors(400, 401, 404, 409, 410, 412, 413, 415, 422, 423, 429, 503) },
        },
      },
      holdingUploadSlot,
    );
    authed.delete(
      `${TUS_PATH}/:id`,
      {
        schema: {
          tags: ['uploads (tus)'],
          summary: 'Terminate an unfinished upload: its parts are aborted (a finished one is 409: DELETE /uploads/{id})',
          description: TUS_HEADERS,
          params: UploadIdParams,
          response: { 204: Type.Null(), ...errors(401, 404, 409, 410, 412, 423, 503) },
        },
      },
      (request, reply) => serve(request, reply),
    );
  });
}

/** Error answers in the API's shape; tus's own plain-text ones mapped by status. Others unchanged. */
async function publicResponse(response: Response): Promise<Response> {
  if (response.status < 400) return response;
  const text = await response.text();
  if (isErrorBody(text)) return errorResponseOf(response.status, text, response.headers);
  return errorResponse(tusPublicErrorForStatus(response.status, text), response.headers);
}

function errorResponse(error: { status: number; code: string; message: string }, headers: Headers): Response {
  return errorResponseOf(error.status, tusErrorBody(error as Parameters<typeof tusErrorBody>[0]), headers);
}

function errorResponseOf(status: number, body: string, from: Headers): Response {
  const headers = new Headers(from);
  headers.set('content-type', 'application/json; charset=utf-8');
  headers.set('content-length', String(Buffer.byteLength(body)));
  return new Response(body, { status, headers });
}

function isErrorBody(text: string): boolean {
  try {
    return typeof (JSON.parse(text) as { error?: { code?: unknown } }).error?.code === 'string';
  } catch {
    return false;
  }
}
