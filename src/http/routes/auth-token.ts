// POST /auth/token — a short-lived token for clients that cannot send an Authorization header
// (EventSource, browser WebSockets). Accepted as ?token= only on the live routes.
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { AppError } from '../../errors.ts';
import { createAccessToken, purgeExpiredAccessTokens } from '../../live/access-tokens.repository.ts';
import { hashApiKey } from '../../tenants/tenants.repository.ts';
import type { RouteDeps } from '../app.ts';
import { bearerToken } from '../auth.ts';
import { errors } from '../schemas.ts';

/** A token's lifetime unless `deps.live.accessTokenTtlSeconds` says otherwise (tests). */
export const ACCESS_TOKEN_TTL_SECONDS = 5 * 60;

export async function authTokenRoutes(app: FastifyInstance, deps: RouteDeps): Promise<void> {
  app.post(
    '/auth/token',
    {
      preHandler: deps.limits.tokenRate,
      schema: {
        tags: ['auth'],
        summary: 'A 5-minute token for the live routes, for clients that cannot set headers',
        description:
          'Send it as `?token=` to GET /uploads/:id/events, GET /events or GET /uploads/:id/ws. Needs the API key. ' +
          'A stream opened with it ends when it expires or its key is revoked (a final `error` event, or WebSocket close 4401).',
        response: {
          201: Type.Object({
            token: Type.String(),
            expiresAt: Type.String({ format: 'date-time' }),
          }),
          ...errors(401, 429),
        },
      },
    },
    async (request, reply) => {
      // The scope's hook admitted this request by its API key (this route takes no ?token=).
      const key = bearerToken(request);
      const ttlSeconds = deps.live?.accessTokenTtlSeconds ?? ACCESS_TOKEN_TTL_SECONDS;
      const minted = key ? await createAccessToken(deps.db, hashApiKey(key), ttlSeconds) : null;
      if (!minted) throw new AppError('unauthorized'); // revoked between the check and now
      await purgeExpiredAccessTokens(deps.db).catch((err: unknown) => request.log.warn({ err }, 'purging expired tokens failed'));
      return reply.status(201).send({ token: minted.token, expiresAt: minted.expiresAt.toISOString() });
    },
  );
}
