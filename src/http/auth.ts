// Bearer API keys → the caller's tenant, attached to the request. Everything downstream is scoped to it.
// Routes that opt in with `config: { queryToken: true }` also take a short-lived `?token=` (for
// EventSource and browser WebSockets, which cannot set headers); no other route ever does.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import type { DB } from '../db/schema.ts';
import { AppError } from '../errors.ts';
import { findTenantByAccessToken } from '../live/access-tokens.repository.ts';
import { findTenantByApiKey, type Tenant } from '../tenants/tenants.repository.ts';

declare module 'fastify' {
  interface FastifyRequest {
    tenant: Tenant;
  }
  interface FastifyContextConfig {
    /** accept `?token=` from POST /auth/token when no Authorization header is sent */
    queryToken?: boolean;
  }
}

export function bearerToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  const match = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  return match?.[1];
}

/** Adds tenant authentication to every route registered in `scope`. */
export function requireApiKey(scope: FastifyInstance, db: Kysely<DB>): void {
  scope.decorateRequest('tenant', null as unknown as Tenant);
  scope.addHook('onRequest', async (request) => {
    const key = bearerToken(request);
    const token = key === undefined && request.routeOptions.config.queryToken ? queryToken(request) : undefined;
    const tenant = key
      ? await findTenantByApiKey(db, key)
      : token
        ? await findTenantByAccessToken(db, token)
        : undefined;
    if (!tenant) throw new AppError('unauthorized');
    request.tenant = tenant;
    request.log = request.log.child({ tenant: tenant.name });
  });
}

function queryToken(request: FastifyRequest): string | undefined {
  const token = (request.query as Record<string, unknown> | undefined)?.token;
  return typeof token === 'string' ? token : undefined;
}
