// Builds the Fastify app as a set of plugins over injected dependencies (no globals, easy to test).
import Fastify, { type FastifyBaseLogger, type FastifyError, type FastifyInstance } from 'fastify';
import multipart from '@fastify/multipart';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import websocket from '@fastify/websocket';
import type { Kysely } from 'kysely';
import type pg from 'pg';
import type { Config } from '../config.ts';
import { isConnectionError } from '../db/connection-errors.ts';
import type { DB } from '../db/schema.ts';
import { AppError, errorBody, errorTable } from '../errors.ts';
import { LiveHub, type LiveOptions } from '../live/hub.ts';
import type { Logger } from '../logger.ts';
import type { ObjectStore } from '../storage/object-store.ts';
import { requireApiKey } from './auth.ts';
import { authTokenRoutes } from './routes/auth-token.ts';
import { liveRoutes } from './routes/live.ts';
import { ErrorResponse, UploadStatusBody } from './schemas.ts';
import { dashboardRoutes } from './routes/dashboard.ts';
import { deliveryRoutes } from './routes/deliveries.ts';
import { healthRoutes } from './routes/health.ts';
import { tenantRoutes } from './routes/tenant.ts';
import { uploadRoutes } from './routes/uploads.ts';

export interface AppDeps {
  config: Readonly<Config>;
  db: Kysely<DB>;
  pool: pg.Pool;
  store: ObjectStore;
  logger: Logger;
  /** live routes' heartbeat and token lifetime (tests shorten them; the defaults are production's) */
  live?: LiveOptions;
}

/** `beforeRoutes` lets a caller hook in before any route is registered (tests list routes with it). */
export async function buildApp(deps: AppDeps, beforeRoutes?: (app: FastifyInstance) => void): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    // Uploads of many GB take long: no whole-request timeout, only a generous idle one.
    requestTimeout: 0,
    connectionTimeout: 0,
    bodyLimit: 1024 * 1024,
    genReqId: (req) => (req.headers['x-request-id'] as string | undefined)?.slice(0, 64) || crypto.randomUUID(),
  });

  beforeRoutes?.(app);
  await app.register(multipart, {
    limits: {
      fileSize: deps.config.maxUploadBytes,
      files: 2, // one `file`; a second file part is drained and ignored rather than failing the upload
      fields: 20,
      fieldSize: 4096,
    },
  });

  // Live progress: WebSocket upgrades (registered before any route, so it sees them all), and the
  // process's one LISTEN connection. Open streams end before the server closes (it waits for them).
  await app.register(websocket, { options: { maxPayload: 4096 } });
  const liveHub = new LiveHub({ db: deps.db, pool: deps.pool, logger: deps.logger, heartbeatMs: deps.live?.heartbeatMs });
  app.decorate('liveHub', liveHub);
  app.addHook('preClose', async () => liveHub.shutdownSessions());
  app.addHook('onClose', () => liveHub.close());

  // OpenAPI is generated from the route schemas; Swagger UI's assets come from node_modules (no CDN).
  app.addSchema(ErrorResponse);
  app.addSchema(UploadStatusBody);
  await app.register(swagger, {
    openapi: {
      info: { title: 'stream-api', version: '0.1.0', description: 'Streams huge CSV uploads into PostgreSQL.' },
      components: { securitySchemes: { apiKey: { type: 'http', scheme: 'bearer' } } },
      security: [{ apiKey: [] }],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  app.setErrorHandler((err: FastifyError | AppError, request, reply) => {
    const { status, code, message } = toPublicError(err);
    if (code === 'database_unavailable') request.log.warn({ err: String(err) }, 'request failed: database unavailable');
    else if (status >= 500) request.log.error({ err }, 'request failed');
    else request.log.info({ code, status }, 'request rejected');
    // An error sent before the request body was read: close rather than read gigabytes we will discard.
    if (!request.raw.readableEnded) reply.header('connection', 'close');
    if (code === 'database_unavailable') reply.header('retry-after', '5');
    return reply.status(status).send(errorBody(code, message));
  });
  app.setNotFoundHandler((request, reply) =>
    reply.status(404).send(errorBody('route_not_found', `no route ${request.method} ${request.url.split('?')[0]}`)),
  );

  // Outside the authenticated scope: probes and scrapers carry no API key.
  await app.register(healthRoutes, deps);
  await app.register(dashboardRoutes); // public: the page asks for the key and sends it itself

  await app.register(async (api) => {
    requireApiKey(api, deps.db);
    await api.register(uploadRoutes, deps);
    await api.register(deliveryRoutes, deps);
    await api.register(tenantRoutes, deps);
    await api.register(authTokenRoutes, deps);
    await api.register(liveRoutes, { ...deps, hub: liveHub });
  });
  return app;
}

function toPublicError(err: FastifyError | AppError): { status: number; code: string; message: string } {
  if (err instanceof AppError) return { status: err.status, code: err.code, message: err.message };
  const fastifyCodes: Record<string, keyof typeof errorTable> = {
    FST_REQ_FILE_TOO_LARGE: 'file_too_large',
    FST_INVALID_MULTIPART_CONTENT_TYPE: 'not_multipart',
    FST_PARTS_LIMIT: 'validation_failed',
    FST_FILES_LIMIT: 'validation_failed',
    FST_FIELDS_LIMIT: 'validation_failed',
    FST_PROTO_VIOLATION: 'validation_failed',
    FST_MP_PREMATURE_CLOSE: 'upload_aborted',
  };
  const mapped = err.code ? fastifyCodes[err.code] : undefined;
  if (mapped) return { status: errorTable[mapped].status, code: mapped, message: err.message };
  if (err.validation) return { status: 400, code: 'validation_failed', message: err.message };
  // The database restarting or out of reach is not a bug of ours: 503, and the client may retry.
  if (isConnectionError(err)) return { status: 503, code: 'database_unavailable', message: errorTable.database_unavailable.message };
  const status = err.statusCode ?? 500;
  if (status >= 500) return { status: 500, code: 'internal', message: errorTable.internal.message };
  // Client errors raised by Fastify itself (bad JSON, bad content type …) are safe to describe.
  return { status, code: 'validation_failed', message: err.message };
}
