// Operations endpoints, public (no API key): liveness, readiness, Prometheus metrics.
// /metrics is unauthenticated on purpose: it holds aggregate counts and latencies only — no tenant,
// upload or delivery ids — and is meant to be scraped on the internal network. Do not route it
// through a public ingress; processes without the API serve it on METRICS_PORT instead.
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { createMetricsEndpoint } from '../../metrics/index.ts';
import { checkReadiness } from '../../metrics/probe.ts';
import type { AppDeps } from '../app.ts';
import { errors } from '../schemas.ts';

const Check = Type.Union([Type.Literal('ok'), Type.Literal('failed'), Type.Literal('timeout')]);
const ReadinessBody = Type.Object({
  status: Type.Union([Type.Literal('ready'), Type.Literal('not_ready')]),
  checks: Type.Object({ database: Check, objectStore: Check }),
});

const PUBLIC = { tags: ['ops'], security: [] };

export async function healthRoutes(app: FastifyInstance, deps: Pick<AppDeps, 'pool' | 'store'>): Promise<void> {
  const metrics = createMetricsEndpoint(deps.pool);

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

  app.get(
    '/metrics',
    {
      schema: {
        ...PUBLIC,
        summary: 'Prometheus metrics (text exposition format)',
        description:
          'Uploads and deliveries by status, rows loaded/rejected and queue depth (read from PostgreSQL at scrape time), ' +
          'load and delivery-attempt duration histograms (this process), process metrics. Unauthenticated: scrape it internally.',
        produces: ['text/plain'],
        response: { 200: Type.String({ description: 'Prometheus text format 0.0.4' }), ...errors(500) },
      },
    },
    async (_request, reply) => {
      const text = await metrics.render();
      return reply.header('content-type', metrics.contentType).header('cache-control', 'no-store').send(text);
    },
  );
}
