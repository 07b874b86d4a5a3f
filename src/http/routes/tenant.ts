// /tenant — the caller's own tenant: its webhook signing secret, and rotating it.
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { AppError } from '../../errors.ts';
import { findWebhookSecret, rotateWebhookSecret } from '../../notify/secrets.repository.ts';
import type { AppDeps } from '../app.ts';
import { errors } from '../schemas.ts';

const Secret = Type.String({ description: 'whsec_… — verify webhooks with any Standard Webhooks library' });

export async function tenantRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  const getSchema = {
    tags: ['tenant'],
    summary: "The caller's tenant and its webhook signing secret",
    response: { 200: Type.Object({ name: Type.String(), webhookSecret: Secret }), ...errors(401) },
  };
  app.get('/tenant', { schema: getSchema }, async (request) => {
    const secret = await findWebhookSecret(deps.db, { id: request.tenant.id });
    if (!secret) throw new AppError('not_found', 'tenant not found');
    return { name: secret.name, webhookSecret: secret.webhookSecret };
  });

  // Both secrets sign for the overlap (see ROTATION_OVERLAP_HOURS): receivers switch at leisure.
  const rotateSchema = {
    tags: ['tenant'],
    summary: 'Rotate the webhook signing secret: the previous one keeps signing too for 24 h',
    response: {
      200: Type.Object({
        name: Type.String(),
        webhookSecret: Secret,
        previousSecretExpiresAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
      }),
      ...errors(401),
    },
  };
  app.post('/tenant/rotate-secret', { schema: rotateSchema }, async (request) => {
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
