// Builds the Fastify app as a set of plugins over injected dependencies (no globals, easy to test).
import Fastify, { type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import multipart from '@fastify/multipart';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import websocket, { type WebSocket } from '@fastify/websocket';
import type { Kysely } from 'kysely';
import type pg from 'pg';
import type { Config } from '../config.ts';
import type { DB } from '../db/schema.ts';
import { AppError, errorBody } from '../errors.ts';
import { LiveHub, type LiveOptions } from '../live/hub.ts';
import type { Logger } from '../logger.ts';
import type { ObjectStore } from '../storage/object-store.ts';
import { requireApiKey } from './auth.ts';
import { watchBodyIdle } from './body-idle.ts';
import { registerTenantLimits, type TenantLimits } from './limits.ts';
import { lingerClose } from './linger.ts';
import { closePipelinedUpgrades } from './upgrade-guard.ts';
import { formatSchemaErrors, onClientError, onWebSocketClientError, toPublicError } from './public-error.ts';
import { authTokenRoutes } from './routes/auth-token.ts';
import { liveRoutes } from './routes/live.ts';
import { ErrorResponse, UploadStatusBody } from './schemas.ts';
import { dashboardRoutes } from './routes/dashboard.ts';
import { datasetRoutes } from './routes/datasets.ts';
import { datasetInferRoutes } from './routes/datasets-infer.ts';
import { deliveryRoutes } from './routes/deliveries.ts';
import { endpointRoutes } from './routes/endpoints.ts';
import { operationRoutes } from './routes/operations.ts';
import { eventTypeRoutes } from './routes/event-types.ts';
import { healthRoutes } from './routes/health.ts';
import { tenantRoutes } from './routes/tenant.ts';
import { tusRoutes } from './routes/tus.ts';
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

/** What route plugins receive: the app's dependencies and the per-tenant limits built with it. */
export type RouteDeps = AppDeps & { limits: TenantLimits };

/** `beforeRoutes` lets a caller hook in before any route is registered (tests list routes with it). */
export async function buildApp(deps: AppDeps, beforeRoutes?: (app: FastifyInstance) => void): Promise<FastifyInstance> {
  const { http: timeouts } = deps.config;
  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    // Uploads of many GB take long: no whole-request or socket timeout; a body idle for
    // BODY_IDLE_TIMEOUT_MS is cut instead (watchBodyIdle), headers must arrive in HEADERS_TIMEOUT_MS.
    requestTimeout: 0,
    connectionTimeout: 0,
    keepAliveTimeout: timeouts.keepAliveTimeoutMs,
    // Node checks the headers timeout every connectionsCheckingInterval (30 s by default, far too coarse)
    http: {
      headersTimeout: timeouts.headersTimeoutMs,
      connectionsCheckingInterval: Math.min(1000, timeouts.headersTimeoutMs),
      // Node would answer a missing Host with an empty 400 of its own: the hook below answers it in our shape.
      requireHostHeader: false,
    },
    bodyLimit: 1024 * 1024,
    genReqId: (req) => (req.headers['x-request-id'] as string | undefined)?.slice(0, 64) || crypto.randomUUID(),
    // Errors before routing (a URL that cannot be decoded …) and HTTP that Node cannot parse get our
    // error shape too, not Fastify's.
    frameworkErrors: (err, request, reply) => sendError(err, request, reply),
    clientErrorHandler: onClientError,
    schemaErrorFormatter: formatSchemaErrors,
  });

  beforeRoutes?.(app);
  app.addHook('onRequest', async (request) => {
    if (request.raw.httpVersion === '1.1' && request.headers.host === undefined) {
      throw new AppError('malformed_request', 'an HTTP/1.1 request needs a Host header (RFC 9112)');
    }
    // GET and HEAD take no body and Fastify never reads one: drain one sent anyway, so that it can
    // neither stall unnoticed nor hide the client's leaving (an unread body holds back the connection's
    // end). Only then: a drained request counts as gone for the live routes (src/http/routes/live.ts).
    const hasBody = request.headers['transfer-encoding'] !== undefined || Number(request.headers['content-length'] ?? 0) > 0;
    if ((request.method === 'GET' || request.method === 'HEAD') && hasBody && !isUpgrade(request)) request.raw.resume();
    watchBodyIdle(request.raw, timeouts.bodyIdleTimeoutMs, () =>
      request.log.info({ idleMs: timeouts.bodyIdleTimeoutMs }, 'request body idle: cancelled'),
    );
  });
  // Ajv's type coercion turns "1e309" into Infinity and then skips the bounds of a number (its
  // minimum/maximum checks only finite values): refuse what no parameter can mean.
  app.addHook('preHandler', async (request) => {
    const field = nonFiniteField(request.query);
    if (field) throw new AppError('validation_failed', `${field} must be a finite number`);
    // PostgreSQL text cannot hold U+0000 (the driver refuses the whole statement): refuse it here, for every
    // route, rather than answer a client's NUL with a database error.
    const nul = nulField(request.body, 'body') ?? nulField(request.query, 'query');
    if (nul) throw new AppError('validation_failed', `${nul} contains a NUL character (U+0000), which text cannot hold`);
  });
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
  await app.register(websocket, { options: { maxPayload: 4096 }, errorHandler: onWebSocketError });
  app.websocketServer.on('wsClientError', onWebSocketClientError);
  closePipelinedUpgrades(app.server);
  const liveHub = new LiveHub({ db: deps.db, pool: deps.pool, logger: deps.logger, heartbeatMs: deps.live?.heartbeatMs });
  app.decorate('liveHub', liveHub);
  app.addHook('preClose', async () => liveHub.shutdownSessions());
  app.addHook('onClose', () => liveHub.close());
  const limits = await registerTenantLimits(app, deps.config);

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

  app.setErrorHandler(sendError);
  app.setNotFoundHandler((request, reply) =>
    reply.status(404).send(errorBody('route_not_found', `no route ${request.method} ${request.url.split('?')[0]}`)),
  );

  // Outside the authenticated scope: probes and scrapers carry no API key.
  await app.register(healthRoutes, deps);
  await app.register(dashboardRoutes); // public: the page asks for the key and sends it itself
  // Resumable uploads: authenticates itself (tus discovery, OPTIONS, carries no key).
  await app.register(tusRoutes, { ...deps, limits });

  await app.register(async (api) => {
    requireApiKey(api, deps.db);
    const routeDeps = { ...deps, limits };
    await api.register(uploadRoutes, routeDeps);
    await api.register(datasetRoutes, routeDeps);
    await api.register(datasetInferRoutes, routeDeps);
    await api.register(deliveryRoutes, routeDeps);
    await api.register(endpointRoutes, routeDeps);
    await api.register(operationRoutes, routeDeps);
    await api.register(eventTypeRoutes);
    await api.register(tenantRoutes, routeDeps);
    await api.register(authTokenRoutes, routeDeps);
    await api.register(liveRoutes, { ...routeDeps, hub: liveHub });
  });
  return app;
}

/** The one error answer: status and stable code from the error table, nothing internal. */
function sendError(err: FastifyError | AppError | Error, request: FastifyRequest, reply: FastifyReply) {
  const { status, code, message, clientGone } = toPublicError(err, request);
  if (reply.raw.headersSent) {
    // The answer had begun (a streamed body failed midway): no error can follow it; cut the connection.
    if (clientGone) request.log.info({ code }, 'client aborted the request');
    else request.log.error({ err }, 'response failed midway');
    reply.hijack();
    reply.raw.destroy();
    return reply;
  }
  if (clientGone) request.log.info({ code }, 'client aborted the request');
  else if (code === 'database_unavailable') request.log.warn({ err: String(err) }, 'request failed: database unavailable');
  else if (status >= 500) request.log.error({ err }, 'request failed');
  else request.log.info({ code, status }, 'request rejected');
  // An error sent before the request body was read: close rather than read gigabytes we will discard —
  // at once when the client stalled or left, else after a short lingering read, so the client still
  // sending gets to read the answer instead of a connection reset.
  if (!request.raw.readableEnded) {
    if (clientGone || code === 'body_idle_timeout') reply.header('connection', 'close');
    else lingerClose(request.raw, reply.raw);
  }
  // A refused upgrade request: Node has handed its socket over, so nobody else will ever close it.
  if (isUpgrade(request)) reply.raw.once('finish', () => request.raw.socket?.destroy());
  const retryAfter = err instanceof AppError ? err.retryAfterSeconds : code === 'database_unavailable' ? 5 : undefined;
  if (retryAfter !== undefined) reply.header('retry-after', String(retryAfter));
  // The route may have set another type for its answer (text/csv, an event stream) before it failed.
  reply.removeHeader('content-disposition');
  return reply.status(status).type('application/json; charset=utf-8').send(errorBody(code, message));
}

/** The first query parameter that Ajv coerced to a non-finite number (Infinity, -Infinity), if any. */
function nonFiniteField(query: unknown): string | undefined {
  if (!query || typeof query !== 'object') return undefined;
  for (const [name, value] of Object.entries(query)) {
    const values: unknown[] = Array.isArray(value) ? value : [value];
    if (values.some((v) => typeof v === 'number' && !Number.isFinite(v))) return name;
  }
  return undefined;
}

/** The path (e.g. `body.columns[0].default`) of the first string or key holding U+0000 in a parsed JSON value, or undefined. */
export function nulField(value: unknown, path: string, depth = 0): string | undefined {
  if (typeof value === 'string') return value.includes('\u0000') ? path : undefined;
  if (!value || typeof value !== 'object' || Buffer.isBuffer(value) || depth > 64) return undefined;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = nulField(value[i], `${path}[${i}]`, depth + 1);
      if (found) return found;
    }
    return undefined;
  }
  for (const [key, v] of Object.entries(value)) {
    if (key.includes('\u0000')) return `${path} (a key)`;
    const found = nulField(v, `${path}.${key}`, depth + 1);
    if (found) return found;
  }
  return undefined;
}

/** Node's mark on a request that asked to switch protocols (its socket is no longer Node's to manage). */
function isUpgrade(request: FastifyRequest): boolean {
  return (request.raw as { upgrade?: boolean }).upgrade === true;
}

/** An error on an open WebSocket: the client's (a bad frame, a reset) at info, ours at error. */
function onWebSocketError(this: FastifyInstance, err: Error, socket: WebSocket, request: FastifyRequest): void {
  const code = (err as { code?: unknown }).code;
  const clientCaused = typeof code === 'string' && (code.startsWith('WS_ERR_') || code === 'ECONNRESET' || code === 'EPIPE');
  if (clientCaused) request.log.info({ code }, 'websocket closed on a client error');
  else request.log.error({ err }, 'websocket handler failed');
  socket.terminate();
}
