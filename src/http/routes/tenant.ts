// /tenant — the caller's own tenant: its webhook signing secret, and rotating it.
import type { FastifyInstance } from 'fastify';
import { AppError } from '../../errors.ts';
import { findWebhookSecret, rotateWebhookSecret } from '../../notify/secrets.repository.ts';
import type { AppDeps } from '../app.ts';

export async function tenantRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  app.get('/tenant', async (request) => {
    const secret = await findWebhookSecret(deps.db, { id: request.tenant.id });
    if (!secret) throw new AppError('not_found', 'tenant not found');
    return { name: secret.name, webhookSecret: secret.webhookSecret };
  });

  // Both secrets sign for the overlap (see ROTATION_OVERLAP_HOURS): receivers switch at leisure.
  app.post('/tenant/rotate-secret', async (request) => {
    const secret = await rotateWebhookSecret(deps.db, { id: request.tenant.id });
    if (!secret) throw new AppError('not_found', 'tenant not found');
    request.log.info('webhook secret rotated');
    return {
      name: secret.name,
      webhookSecret: secret.webhookSecret,
      previousSecretExpiresAt: secret.previousSecretExpiresAt?.toISOString() ?? null,
    };
  });
}
