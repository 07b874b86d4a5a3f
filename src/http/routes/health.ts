// Probes on the API listener, public (no API key): liveness and readiness, for a load balancer in
// front of the API. /metrics is not here: it has no authentication and its gauges span every tenant,
// so it is served only by the ops listener (METRICS_HOST:METRICS_PORT, src/metrics/server.ts).
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { checkReadiness } from '../../metrics/probe.ts';
import type { AppDeps } from '../app.ts';

const Check = Type.Union([Type.Literal('ok'), Type.Literal('failed'), Type.Literal('timeout')]);
const ReadinessBody = Type.Object({
  status: Type.Union([Type.Literal('ready'), Type.Literal('not_ready')]),
  checks: Type.Object({ database: Check, objectStore: Check }),
});

const PUBLIC = { tags: ['ops'], security: [] };

export async function healthRoutes(app: FastifyInstance, deps: Pick<AppDeps, 'pool' | 'store'>): Promise<void> {
  app.get(
    '/healthz',
    {
      schema: {
        ...PUBLIC,
        summary: 'Liveness: the process is up (checks no dependency)',
        response: { 200: Type.Object({ status: Type.Literal('ok') }) },
      },
    },
    async () => ({ status: 'ok' as const }),
  );

  app.get(
    '/readyz',
    {
      schema: {
        ...PUBLIC,
        summary: 'Readiness: PostgreSQL answers SELECT 1 and the bucket answers',
        description: '503 names the check that failed (`failed`, or `timeout` after 2 s); details go to the server log.',
        response: { 200: ReadinessBody, 503: ReadinessBody },
      },
    },
    async (request, reply) => {
      const { ready, checks, errors } = await checkReadiness(deps.pool, deps.store);
      if (!ready) request.log.warn({ checks, errors }, 'not ready');
      return reply.status(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not_ready', checks });
    },
  );
}
