// Bearer API keys → the caller's tenant, attached to the request. Everything downstream is scoped to it.
// Routes that opt in with `config: { queryToken: true }` also take a short-lived `?token=` (for
// EventSource and browser WebSockets, which cannot set headers); no other route ever does.
// What admitted the request is kept too (`request.access`): a live stream outlives its request and
// re-checks it (src/live/access-watch.ts).
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import type { DB } from '../db/schema.ts';
import { AppError } from '../errors.ts';
import type { StreamAccess } from '../live/access.ts';
import { findAccessToken } from '../live/access-tokens.repository.ts';
import { findApiKey, type Tenant } from '../tenants/tenants.repository.ts';

declare module 'fastify' {
  interface FastifyRequest {
    tenant: Tenant;
    /** the tenant, the API key, and the `?token=` (if any) that admitted the request */
    access: StreamAccess;
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
  scope.decorateRequest('access', null as unknown as StreamAccess);
  scope.addHook('onRequest', async (request) => {
    const access = await authenticate(request, db);
    if (!access) throw new AppError('unauthorized');
    request.tenant = access.tenant;
    request.access = { tenantId: access.tenant.id, apiKeyId: access.apiKeyId, token: access.token };
    request.log = request.log.child({ tenant: access.tenant.name });
  });
}

async function authenticate(request: FastifyRequest, db: Kysely<DB>) {
  const key = bearerToken(request);
  if (key !== undefined) {
    const found = await findApiKey(db, key);
    return found && { ...found, token: null };
  }
  const token = request.routeOptions.config.queryToken ? queryToken(request) : undefined;
  const found = token ? await findAccessToken(db, token) : undefined;
  // The expiry moves to this process's clock, measured from the database's: clock skew cannot stretch it.
  return found && { ...found, token: { hash: found.tokenHash, expiresAtMs: Date.now() + found.expiresInMs } };
}

function queryToken(request: FastifyRequest): string | undefined {
  const token = (request.query as Record<string, unknown> | undefined)?.token;
  return typeof token === 'string' ? token : undefined;
}
