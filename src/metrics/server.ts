// The ops listener of every role: /metrics, /healthz and /readyz on a port of their own
// (METRICS_HOST:METRICS_PORT) — a bare node:http server, no framework. /metrics has no authentication
// and its gauges span every tenant, so it lives only here, never on the public API port; the
// listener binds to loopback unless METRICS_HOST says otherwise (the Docker image: 0.0.0.0, for a
// scraper on the internal network).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type pg from 'pg';
import type { Logger } from '../logger.ts';
import type { ObjectStore } from '../storage/object-store.ts';
import { createMetricsEndpoint } from './index.ts';
import { checkReadiness } from './probe.ts';

export interface MetricsServer {
  port: number;
  close(): Promise<void>;
}

/**
 * Listens on `host:port` (port 0: any free port; `port` of the result is the real one). Rejects
 * with the listen error (EADDRINUSE …) for the caller to explain. `close()` stops listening and
 * drops idle keep-alive connections.
 */
export async function startMetricsServer(opts: {
  host: string;
  port: number;
  pool: pg.Pool;
  store: ObjectStore;
  logger: Logger;
}): Promise<MetricsServer> {
  const metrics = createMetricsEndpoint(opts.pool);
  const server: Server = createServer((req, res) => {
    const send = (status: number, type: string, body: string) => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' }).end(body);
    };
    const json = (status: number, body: unknown) => send(status, 'application/json; charset=utf-8', JSON.stringify(body));
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') return json(405, { error: { code: 'method_not_allowed', message: 'GET only' } });
    if (path === '/healthz') return json(200, { status: 'ok' });
    if (path === '/readyz') {
      return void checkReadiness(opts.pool, opts.store).then(({ ready, checks, errors }) => {
        if (!ready) opts.logger.warn({ checks, errors }, 'not ready');
        json(ready ? 200 : 503, { status: ready ? 'ready' : 'not_ready', checks });
      });
    }
    if (path === '/metrics') {
      return void metrics.render().then(
        (text) => send(200, metrics.contentType, text),
        (err: unknown) => {
          opts.logger.error({ err }, 'rendering metrics failed');
          json(500, { error: { code: 'internal', message: 'metrics unavailable' } });
        },
      );
    }
    json(404, { error: { code: 'route_not_found', message: `no route ${req.method} ${path}` } });
  });
  // Scrapers keep connections alive; do not let an idle one hold shutdown up.
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  opts.logger.info({ host: opts.host, port }, 'ops listener (metrics, probes) listening');
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}
