// Bearer API keys → the caller's tenant, attached to the request. Everything downstream is scoped to it.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import type { DB } from '../db/schema.ts';
import { AppError } from '../errors.ts';
import { findTenantByApiKey, type Tenant } from '../tenants/tenants.repository.ts';

declare module 'fastify' {
  interface FastifyRequest {
    tenant: Tenant;
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
    const tenant = key ? await findTenantByApiKey(db, key) : undefined;
    if (!tenant) throw new AppError('unauthorized');
    request.tenant = tenant;
    request.log = request.log.child({ tenant: tenant.name });
  });
}
