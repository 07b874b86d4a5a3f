// Live progress: an upload's events over SSE and WebSocket, and the tenant-wide SSE feed. All fed by
// the process's one LISTEN connection (src/live/hub.ts); the tenant is checked before a stream starts,
// and the key or token that opened it for as long as it stays open (src/live/access-watch.ts).
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../../errors.ts';
import type { LiveHub } from '../../live/hub.ts';
import { loadStatusBody } from '../../live/live.repository.ts';
import { FeedSession, UploadSession } from '../../live/sessions.ts';
import { openSse } from '../../live/sse.ts';
import { recordStreamEnd } from '../../live/stream-ends.ts';
import { wsSink } from '../../live/ws.ts';
import { findUpload } from '../../uploads/uploads.repository.ts';
import type { RouteDeps } from '../app.ts';
import { acquireOrRefuse } from '../limits.ts';
import { errors, UploadIdParams } from '../schemas.ts';
import { uploadIdParam } from './uploads.ts';

export type LiveRouteDeps = RouteDeps & { hub: LiveHub };

type LiveQuery = { token?: string };
type UploadLive = { Params: { id: string }; Querystring: LiveQuery; Headers: { 'last-event-id'?: string } };

const TokenQuery = Type.Object({
  token: Type.Optional(
    Type.String({ description: 'a token from POST /auth/token, for clients that cannot send an Authorization header' }),
  ),
});
const ResumeHeaders = Type.Object({
  'last-event-id': Type.Optional(
    Type.String({ description: 'sent by EventSource on reconnect; after the end of the upload, `done` is sent at once' }),
  ),
});
const ACCESS_ENDS =
  'Access is re-checked while the stream is open: when the API key is revoked (checked every heartbeat), the ' +
  '`?token=` expires (at once), or the upload is deleted, a last `error` event `{ error: { code, message } }` ' +
  '(`key_revoked`, `token_expired`, `not_found`) says why and the stream ends.';
const eventStream = (description: string) => ({
  description,
  content: { 'text/event-stream': { schema: Type.String() } },
});

export async function liveRoutes(app: FastifyInstance, deps: LiveRouteDeps): Promise<void> {
  const { hub } = deps;

  app.get<UploadLive>(
    '/uploads/:id/events',
    {
      config: { queryToken: true },
      schema: {
        tags: ['live'],
        summary: "An upload's live progress (Server-Sent Events: status, progress, done)",
        description:
          'Sends `status` (the GET /uploads/:id body) at once and on every status change, `progress` at most ' +
          'about once a second, then `done` (the final body) and closes. Heartbeat comments every 15 s. ' +
          ACCESS_ENDS,
        params: UploadIdParams,
        querystring: TokenQuery,
        headers: ResumeHeaders,
        response: { 200: eventStream('an event stream that ends after `done`'), ...errors(401, 404, 429) },
      },
    },
    async (request, reply) => {
      const tenantId = request.tenant.id;
      const uploadId = uploadIdParam(request);
      holdStreamSlot(request, reply);
      const session = new UploadSession(hub.nextEventId);
      whenClientGone(request, reply, () => session.closed());
      // The hub checks the tenant can see the upload before it subscribes: a foreign id never opens a topic.
      const unsubscribe = await hub.subscribeUpload(request.access, uploadId, session);
      if (!unsubscribe) {
        session.closed();
        throw new AppError('not_found', 'upload not found');
      }
      session.whenEnded(unsubscribe);
      const snapshot = await loadStatusBody(deps, tenantId, uploadId).catch((err: unknown) => {
        session.closed();
        throw err;
      });
      if (!snapshot) {
        session.closed();
        throw new AppError('not_found', 'upload not found');
      }
      recordStreamEnd(session, 'sse', request.log);
      session.start(openSse(reply), snapshot, Boolean(request.headers['last-event-id']));
      return reply;
    },
  );

  app.get<{ Querystring: LiveQuery }>(
    '/events',
    {
      config: { queryToken: true },
      schema: {
        tags: ['live'],
        summary: "Every upload event of the caller's tenant (Server-Sent Events: upload, endpoint.disabled)",
        description:
          'One `upload` event per status change and progress tick (at most about once a second per upload): ' +
          'the upload_events payload plus `progress` and `rowsPerSecond`. An `endpoint.disabled` event (the payload ' +
          'of that event type, GET /event-types) when the service disables one of the tenant\'s endpoints. Never ends by itself (but see below); ' +
          'heartbeat comments every 15 s. ' +
          ACCESS_ENDS,
        querystring: TokenQuery,
        response: { 200: eventStream('an endless event stream'), ...errors(401, 429) },
      },
    },
    async (request, reply) => {
      holdStreamSlot(request, reply);
      const session = new FeedSession(hub.nextEventId);
      whenClientGone(request, reply, () => session.closed());
      session.whenEnded(await hub.subscribeTenant(request.access, session));
      recordStreamEnd(session, 'feed', request.log);
      session.start(openSse(reply));
      return reply;
    },
  );

  // `wsHandler` + `handler` rather than `websocket: true`, which @fastify/websocket hides from OpenAPI.
  app.route<UploadLive>({
    method: 'GET',
    url: '/uploads/:id/ws',
    config: { queryToken: true },
    schema: {
      tags: ['live'],
      summary: "An upload's live progress over WebSocket (messages { event, id, data })",
      description:
        'The same events as GET /uploads/:id/events, as JSON messages `{ "event", "id", "data" }`; closed with ' +
        'code 1000 after `done`. A request without a WebSocket upgrade is a 400. When access ends, an `error` ' +
        'message `{ error: { code } }`, then close code 4401 (`key_revoked`, `token_expired`) or 4404 ' +
        '(`not_found`), the code as the close reason.',
      params: UploadIdParams,
      querystring: TokenQuery,
      response: { 101: { description: 'switching to the WebSocket protocol' }, ...errors(400, 401, 404, 429) },
    },
    // Before the upgrade, so another tenant's id is a plain HTTP 404 (and a tenant at its limit a 429)
    // like everywhere else.
    preValidation: async (request) => {
      if (!(await findUpload(deps.db, request.tenant.id, uploadIdParam(request)))) {
        throw new AppError('not_found', 'upload not found');
      }
      if (request.ws) {
        // The upgraded connection is the stream: its slot is given back when the socket closes.
        const release = acquireOrRefuse(deps.limits.liveStreams, request, 'too_many_live_streams');
        const socket = request.raw.socket;
        if (socket.destroyed) release();
        else socket.once('close', release);
      }
    },
    handler: async () => {
      throw new AppError('validation_failed', 'this route needs a WebSocket upgrade (Connection: Upgrade, Upgrade: websocket)');
    },
    wsHandler: async (socket, request) => {
      const tenantId = request.tenant.id;
      const uploadId = uploadIdParam(request);
      const session = new UploadSession(hub.nextEventId);
      socket.once('close', () => session.closed());
      socket.on('error', () => socket.terminate());
      const unsubscribe = await hub.subscribeUpload(request.access, uploadId, session);
      if (unsubscribe) session.whenEnded(unsubscribe);
      const snapshot = unsubscribe ? await loadStatusBody(deps, tenantId, uploadId) : undefined;
      if (!snapshot) {
        session.closed();
        socket.close(4404, 'upload not found'); // deleted since the check above
        return;
      }
      recordStreamEnd(session, 'ws', request.log);
      session.start(wsSink(socket), snapshot, false);
    },
  });

  /** One of the tenant's LIMIT_LIVE_STREAMS for this response, given back when it closes (ended, failed or gone). */
  function holdStreamSlot(request: FastifyRequest, reply: FastifyReply): void {
    const release = acquireOrRefuse(deps.limits.liveStreams, request, 'too_many_live_streams');
    if (reply.raw.closed) release();
    else reply.raw.once('close', release);
  }
}

/** Runs `fn` once the client has gone (or at once if it already has). */
function whenClientGone(request: FastifyRequest, reply: FastifyReply, fn: () => void): void {
  if (reply.raw.closed || request.raw.destroyed) return fn();
  reply.raw.once('close', fn);
}

declare module 'fastify' {
  interface FastifyInstance {
    /** the process's live hub (tests read its subscriber count) */
    liveHub: LiveHub;
  }
}
