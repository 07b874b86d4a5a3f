// `serve --role …`: one process hosts any of the API, the worker and the dispatcher.
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import type { Config, Role } from './config.ts';
import { migrate } from './db/migrate.ts';
import { ensureDevKey } from './dev-key.ts';
import { buildApp } from './http/app.ts';
import { startWorker, type WorkerHandle } from './ingest/worker.ts';
import { createLogger } from './logger.ts';
import { startMetricsServer, type MetricsServer } from './metrics/server.ts';
import { startDispatcher, type DispatcherHandle } from './notify/dispatcher.ts';
import { openRuntime, type Runtime } from './runtime.ts';
import { assertPortFree, explainListenError } from './startup-error.ts';

export interface Service {
  /** the API's URL (roles all and api), else null */
  url: string | null;
  /** the ops listener's URL: /metrics, /healthz, /readyz (every role) */
  opsUrl: string;
  stop(): Promise<void>;
}

/**
 * Starts `role` in this process (with the embedded PostgreSQL / S3 server when DATABASE_URL /
 * S3_ENDPOINT are unset) and prints the banner. Throws StartupError for what the user fixes (a taken
 * port names its variable); whatever fails, everything started so far is stopped first.
 */
export async function serve(config: Readonly<Config>, role: Role, print: (line: string) => void): Promise<Service> {
  const logger = createLogger(config.logLevel);
  // A taken port stops the start before anything is started (a second `npm start` beside a running one).
  if (role === 'all' || role === 'api') await assertPortFree('PORT', config.port, config.host);
  await assertPortFree('METRICS_PORT', config.metricsPort, config.metricsHost);
  if (!config.s3.endpoint) await assertPortFree('EMBEDDED_S3_PORT', config.embeddedS3Port, '127.0.0.1');
  const runtime = await openRuntime(config, logger, `stream-api:${role}`);

  let app: FastifyInstance | null = null;
  let worker: WorkerHandle | null = null;
  let dispatcher: DispatcherHandle | null = null;
  let metrics: MetricsServer | null = null;
  let url: string | null = null;
  let opsUrl = '';
  // From here on, a failure stops everything started so far (the embedded servers included) before
  // it is thrown: a failed start leaves no orphan behind.
  try {
    await migrate(runtime.pool, (msg) => logger.info(msg));
    // Every role has its ops listener; /metrics is served nowhere else (the API port is public).
    const { pool, store } = runtime;
    metrics = await startMetricsServer({ host: config.metricsHost, port: config.metricsPort, pool, store, logger }).catch((err) => {
      throw explainListenError(err, 'METRICS_PORT', config.metricsPort);
    });
    opsUrl = `http://${urlHost(config.metricsHost)}:${metrics.port}`;
    if (role === 'all' || role === 'worker') worker = await startWorker(runtime);
    if (role === 'all' || role === 'dispatcher') dispatcher = await startDispatcher(runtime);
    if (role === 'all' || role === 'api') {
      app = await buildApp(runtime);
      await app.listen({ host: config.host, port: config.port }).catch((err) => {
        throw explainListenError(err, 'PORT', config.port);
      });
      const address = app.server.address();
      const port = typeof address === 'object' && address ? address.port : config.port;
      url = config.publicUrl ?? `http://localhost:${port}`;
      const key = config.devKey ? await ensureDevKey(runtime.db, config.dataDir) : null;
      printBanner(print, url, opsUrl, role, key);
      printEmbedded(print, runtime);
    } else {
      print(`stream-api ${role} running; metrics on port ${metrics.port} (${opsUrl}/metrics)`);
      printEmbedded(print, runtime);
    }
  } catch (err) {
    await stopAll().catch((stopErr: unknown) => logger.warn({ err: stopErr }, 'stopping after a failed start failed'));
    throw err;
  }

  /**
   * Every role at once stops taking work (the API refuses new requests, the worker takes no new job,
   * the dispatcher claims nothing) and finishes what it holds; side by side, so an upload still
   * being received does not keep the worker taking jobs meanwhile. Only then close connections.
   */
  async function stopAll(): Promise<void> {
    const results = await Promise.allSettled([app?.close(), worker?.stop(), dispatcher?.stop()]);
    await metrics?.close(); // last, so a scrape can watch the drain
    await runtime.close();
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  let stopping: Promise<void> | null = null;
  return { url, opsUrl, stop: () => (stopping ??= stopAll()) };
}

const SAMPLE_CSV = fileURLToPath(new URL('../examples/webhook_events.csv', import.meta.url));

/** A host for a URL a user can open: a wildcard address means this machine; IPv6 gets brackets. */
function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '::') return 'localhost';
  return host.includes(':') ? `[${host}]` : host;
}

/** Zero-config: where the embedded servers are, so other roles or tools can be pointed at them. */
function printEmbedded(print: (line: string) => void, rt: Runtime): void {
  if (rt.embedded.postgres) print(`embedded PostgreSQL: ${rt.databaseUrl}   (DATABASE_URL for other processes)`);
  if (rt.embedded.s3) {
    const { bucket, accessKeyId, secretAccessKey } = rt.config.s3;
    print(`embedded S3 server: ${rt.s3Endpoint}   (S3_ENDPOINT; bucket ${bucket}, S3_ACCESS_KEY_ID=${accessKeyId} S3_SECRET_ACCESS_KEY=${secretAccessKey})`);
  }
  if (rt.embedded.postgres || rt.embedded.s3) print('');
}

function printBanner(print: (line: string) => void, url: string, opsUrl: string, role: Role, key: string | null): void {
  print('');
  print(`stream-api (${role}) listening on ${url}`);
  print(`metrics and probes: ${opsUrl}/metrics (METRICS_PORT; not on the API port)`);
  if (key) {
    print(`dev API key: ${key}`);
    print('try it:');
    print(`  curl -H "Authorization: Bearer ${key}" -F file=@${SAMPLE_CSV} ${url}/upload`);
    print(`  curl -H "Authorization: Bearer ${key}" ${url}/uploads`);
  }
  print('');
}
