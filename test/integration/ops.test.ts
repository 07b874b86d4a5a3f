// Operations surface: /healthz and /readyz on the API (public), readiness failures; /metrics only on
// the ops listener (METRICS_HOST:METRICS_PORT) of every role, never on the API port; metrics that
// follow a real upload from queue to webhook.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/http/app.ts';
import { checkReadiness } from '../../src/metrics/probe.ts';
import { startMetricsServer, type MetricsServer } from '../../src/metrics/server.ts';
import { startDispatcher } from '../../src/notify/dispatcher.ts';
import { ObjectStore } from '../../src/storage/object-store.ts';
import { createTestEnv, startApi, type TestEnv } from '../helpers/env.ts';
import { request, upload } from '../helpers/http.ts';
import { sample, scrape } from '../helpers/metrics.ts';
import { startReceiver, type Receiver } from '../helpers/receiver.ts';
import { spawnService, startTestWorker, waitForStatus } from '../helpers/worker.ts';
import { waitForDelivery } from '../helpers/outbox.ts';
import { waitFor } from '../helpers/wait.ts';

const EXAMPLE = fileURLToPath(new URL('../../examples/webhook_events.csv', import.meta.url));

let t: TestEnv;
let api: Awaited<ReturnType<typeof startApi>>;
let key: string;
let receiver: Receiver;
let ops: MetricsServer;
let opsUrl: string;

beforeAll(async () => {
  t = await createTestEnv({ WEBHOOK_ALLOWED_CIDRS: '127.0.0.0/8' });
  api = await startApi(t);
  ops = await startMetricsServer({ host: '127.0.0.1', port: 0, pool: t.pool, store: t.store, logger: t.logger });
  opsUrl = `http://127.0.0.1:${ops.port}`;
  ({ key } = await t.newTenantKey());
  receiver = await startReceiver();
});
afterAll(async () => {
  await receiver?.close();
  await ops?.close();
  await api?.close();
  await t?.close();
});

describe('probes', () => {
  it('/healthz and /readyz answer without an API key', async () => {
    const health = await request(api.url, null, 'GET', '/healthz');
    expect(health).toMatchObject({ status: 200, body: { status: 'ok' } });
    const ready = await request(api.url, null, 'GET', '/readyz');
    expect(ready).toMatchObject({ status: 200, body: { status: 'ready', checks: { database: 'ok', objectStore: 'ok' } } });
    // The authenticated scope is untouched.
    expect((await request(api.url, null, 'GET', '/uploads')).status).toBe(401);
  });

  it('/readyz is 503 and names the check that failed', async () => {
    const deadStore = new ObjectStore({ ...t.config.s3, endpoint: 'http://127.0.0.1:9' });
    const deadPool = new pg.Pool({ connectionString: 'postgres://nobody@127.0.0.1:9/none', max: 1 });
    deadPool.on('error', () => {});
    const cases = [
      { pool: t.pool, store: deadStore, expected: { database: 'ok', objectStore: 'failed' } },
      { pool: deadPool, store: t.store, expected: { database: 'failed', objectStore: 'ok' } },
    ];
    try {
      for (const { pool, store, expected } of cases) {
        const app = await buildApp({ config: t.config, db: t.db, pool, store, logger: t.logger });
        try {
          const res = await app.inject({ method: 'GET', url: '/readyz' });
          expect(res.statusCode).toBe(503);
          expect(res.json()).toEqual({ status: 'not_ready', checks: expected });
          expect(res.body).not.toContain('127.0.0.1'); // causes go to the log, not to the caller
        } finally {
          await app.close();
        }
      }
    } finally {
      deadStore.destroy();
      await deadPool.end();
    }
  });

  it('a dependency that hangs is reported as a timeout, not waited for', async () => {
    const hang = () => new Promise<never>(() => {});
    const started = Date.now();
    const result = await checkReadiness({ query: hang } as never, { ping: hang }, 100);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(result).toMatchObject({ ready: false, checks: { database: 'timeout', objectStore: 'timeout' } });
  });

  it('documents the probes as public in OpenAPI, and no /metrics (the API does not serve it)', async () => {
    const res = await request(api.url, null, 'GET', '/openapi.json');
    expect(res.status).toBe(200);
    for (const path of ['/healthz', '/readyz']) {
      const op = res.body.paths[path].get;
      expect(op.tags).toEqual(['ops']);
      expect(op.security).toEqual([]);
      expect(op.summary).toBeTruthy();
    }
    expect(Object.keys(res.body.paths)).not.toContain('/metrics');
  });
});

describe('/metrics lives on the ops listener only', () => {
  it('the API port answers 404 for /metrics, with or without a key', async () => {
    for (const auth of [null, key]) {
      const res = await request(api.url, auth, 'GET', '/metrics');
      expect(res.status).toBe(404);
      expect(res.text).not.toContain('stream_api_');
    }
  });

  it('`serve --role api` starts the ops listener by itself: /metrics there, 404 on the API port', async () => {
    const child = spawnService(t, 'api');
    let output = '';
    child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
    try {
      const banner = await new Promise<RegExpExecArray>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no banner within 30 s:\n${output}`)), 30_000);
        child.stdout!.on('data', () => {
          const m = /listening on (http:\/\/\S+)\nmetrics and probes: (http:\/\/\S+)\/metrics/.exec(output);
          if (!m) return;
          clearTimeout(timer);
          resolve(m);
        });
        child.once('exit', (code) => reject(new Error(`exited ${code} before its banner:\n${output}`)));
      });
      const [apiUrl, processOps] = [banner[1]!.replace('localhost', '127.0.0.1'), banner[2]!];
      expect(processOps).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/); // METRICS_HOST defaults to loopback
      expect((await request(apiUrl, null, 'GET', '/metrics')).status).toBe(404);
      expect((await request(apiUrl, null, 'GET', '/healthz')).status).toBe(200);
      const text = await scrape(processOps);
      expect(sample(text, 'stream_api_metrics_database_up')).toBe(1);
      expect(sample(text, 'stream_api_uploads', { status: 'completed' })).toBeGreaterThanOrEqual(0);
      expect((await request(processOps, null, 'GET', '/readyz')).status).toBe(200);
    } finally {
      child.kill('SIGTERM');
      if (child.exitCode === null) await new Promise((r) => child.once('exit', r));
    }
  }, 60_000);

  it('is Prometheus text, with process metrics and every stream_api family', async () => {
    const text = await scrape(opsUrl);
    expect(sample(text, 'process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(sample(text, 'stream_api_metrics_database_up')).toBe(1);
    for (const family of [
      'stream_api_uploads',
      'stream_api_rows_loaded',
      'stream_api_rows_rejected',
      'stream_api_deliveries',
      'stream_api_queue_jobs_waiting',
      'stream_api_load_duration_seconds',
      'stream_api_delivery_attempt_duration_seconds',
    ]) {
      expect(text).toContain(`# TYPE ${family} `);
    }
    expect(sample(text, 'stream_api_uploads', { status: 'failed' })).toBe(0);
  });

  it('follows an upload: queued, loaded (rows, duration), delivered (status, latency)', async () => {
    const lines = readFileSync(EXAMPLE, 'utf8').trimEnd().split('\n');
    const bad = lines[1]!.replace(/^[^,]+/, 'not-a-uuid');
    const csv = [...lines.slice(0, 11), bad, bad].join('\n') + '\n';

    const before = await scrape(opsUrl);
    const res = await upload(api.url, key, { file: { content: csv }, fields: { callbackUrl: receiver.url } });
    expect(res.status).toBe(202);
    const id = res.body.uploadId as string;

    const queued = await scrape(opsUrl);
    expect(sample(queued, 'stream_api_uploads', { status: 'uploaded' })).toBe(1);
    expect(sample(queued, 'stream_api_queue_jobs_waiting', { task: 'process-upload' })).toBe(1);

    const worker = await startTestWorker(t);
    const dispatcher = await startDispatcher({ pool: t.pool, config: t.config, logger: t.logger, databaseUrl: t.databaseUrl });
    try {
      await waitForStatus(t, id, ['completed', 'failed'], 30_000);
      // The dispatcher expands the upload's event into its delivery, then sends it.
      let deliveryId: string | undefined;
      await waitFor(async () => {
        ({ id: deliveryId } = (await t.pool.query('SELECT id FROM deliveries WHERE upload_id = $1', [id])).rows[0] ?? {});
        return deliveryId !== undefined;
      }, 30_000, 'the delivery to be written');
      await waitForDelivery(t.pool, deliveryId!);
    } finally {
      await dispatcher.stop();
      await worker.stop();
    }

    const after = await scrape(opsUrl);
    expect(sample(after, 'stream_api_uploads', { status: 'completed' })).toBe(1);
    expect(sample(after, 'stream_api_uploads', { status: 'uploaded' })).toBe(0);
    expect(sample(after, 'stream_api_queue_jobs_waiting', { task: 'process-upload' })).toBe(0);
    expect(sample(after, 'stream_api_rows_loaded')).toBe(10);
    expect(sample(after, 'stream_api_rows_rejected')).toBe(2);
    expect(sample(after, 'stream_api_deliveries', { status: 'sent' })).toBe(1);
    // Histograms live in this process (the worker and dispatcher ran here): compare with before.
    const delta = (name: string, labels: Record<string, string>) => (sample(after, name, labels) ?? 0) - (sample(before, name, labels) ?? 0);
    expect(delta('stream_api_load_duration_seconds_count', { outcome: 'completed' })).toBe(1);
    expect(delta('stream_api_load_duration_seconds_sum', { outcome: 'completed' })).toBeGreaterThan(0);
    expect(delta('stream_api_delivery_attempt_duration_seconds_count', { outcome: 'sent' })).toBe(1);
    expect(delta('stream_api_delivery_attempt_duration_seconds_bucket', { outcome: 'sent', le: '+Inf' })).toBe(1);
  });
});

describe('the ops listener', () => {
  it('serves /metrics, /healthz and /readyz; 404 elsewhere', async () => {
    const text = await scrape(opsUrl);
    expect(sample(text, 'stream_api_metrics_database_up')).toBe(1);
    expect(text).toContain('# TYPE stream_api_load_duration_seconds histogram');
    expect(await request(opsUrl, null, 'GET', '/healthz')).toMatchObject({ status: 200, body: { status: 'ok' } });
    expect(await request(opsUrl, null, 'GET', '/readyz')).toMatchObject({ status: 200, body: { status: 'ready' } });
    expect((await request(opsUrl, null, 'GET', '/uploads')).status).toBe(404);
  });

  it('reports the database as down instead of failing the scrape', async () => {
    const deadPool = new pg.Pool({ connectionString: 'postgres://nobody@127.0.0.1:9/none', max: 1 });
    deadPool.on('error', () => {});
    const server = await startMetricsServer({ host: '127.0.0.1', port: 0, pool: deadPool, store: t.store, logger: t.logger });
    try {
      const text = await scrape(`http://127.0.0.1:${server.port}`);
      expect(sample(text, 'stream_api_metrics_database_up')).toBe(0);
      expect(sample(text, 'stream_api_uploads', { status: 'completed' })).toBeUndefined();
      expect(sample(text, 'process_resident_memory_bytes')).toBeGreaterThan(0);
    } finally {
      await server.close();
      await deadPool.end();
    }
  });
});
