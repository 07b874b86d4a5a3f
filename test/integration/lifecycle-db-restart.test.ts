// PostgreSQL restarts during a load: `serve --role all` rides it out. Against a throwaway embedded
// PostgreSQL of this test's own (the shared server is never restarted), the real s3rver, real HTTP.
import { once } from 'node:events';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from '../../src/db/embedded-postgres.ts';
import { readPostmaster, stopPostmaster } from '../../src/db/embedded-postgres-cluster.ts';
import { generateCsv } from '../helpers/generate.ts';
import { request, upload } from '../helpers/http.ts';
import { spawnServe } from '../helpers/worker.ts';
import { waitFor } from '../helpers/wait.ts';

let dataDir: string;
let port: number;
let server: EmbeddedPostgresHandle | null = null;
let service: ChildProcess | null = null;
let output = '';

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'stream-api-restart-'));
  await chmod(dataDir, 0o755); // as root, Postgres runs as the `postgres` user and must reach its data dir
  port = await freePort();
  server = await startEmbeddedPostgres({ dataDir, port });
}, 120_000);
afterAll(async () => {
  // The service first: the cluster is stopped only once nobody else is connected.
  if (service && service.exitCode === null) {
    const exited = once(service, 'exit');
    service.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
    service.kill('SIGKILL');
  }
  await server?.stop().catch(() => {});
  await rm(dataDir, { recursive: true, force: true });
}, 60_000);

describe('a PostgreSQL restart during a load', () => {
  it('keeps the process up: 503 while the database is away, ready again by itself, the load retried to an exact count', async () => {
    const bucket = `restart-${process.pid}`;
    const s3 = new S3Client({
      endpoint: inject('s3Endpoint'),
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    });
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    s3.destroy();

    service = spawnServe('all', {
      DATABASE_URL: server!.url,
      S3_ENDPOINT: inject('s3Endpoint'),
      S3_BUCKET: bucket,
      S3_ACCESS_KEY_ID: 'S3RVER',
      S3_SECRET_ACCESS_KEY: 'S3RVER',
      DATA_DIR: path.join(dataDir, 'service'), // only its dev key: the database is DATABASE_URL
      DEV_API_KEY: 'true',
      LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn',
      WORKER_LEASE_SECONDS: '3',
    });
    service.stdout!.on('data', (d) => (output += d));
    service.stderr!.on('data', (d) => (output += d));
    await waitFor(async () => /dev API key: \S+/.test(output), 60_000, 'the service to start');
    const url = output.match(/listening on (\S+)/)![1]!;
    const key = output.match(/dev API key: (\S+)/)![1]!;

    const rows = 600_000;
    const res = await upload(url, key, { file: { content: generateCsv(rows) } });
    expect(res.status).toBe(202);
    const id: string = res.body.uploadId;
    await waitFor(async () => (await dbState(id))?.rows_processed > 0, 60_000, 'the load to be under way');

    // A fast shutdown while the service is connected: every connection ends with "terminating
    // connection due to administrator command". (The handle's stop() leaves a used cluster running.)
    const clusterDir = path.join(dataDir, 'pg');
    await stopPostmaster(clusterDir, (await readPostmaster(clusterDir))!.pid);
    server = null;
    const downAt = Date.now();
    const during = { ready: new Set<number>(), status: new Set<number>(), codes: new Set<string>(), health: new Set<number>() };
    while (Date.now() - downAt < 3000) {
      during.ready.add((await request(url, null, 'GET', '/readyz')).status);
      const status = await request(url, key, 'GET', `/uploads/${id}`);
      during.status.add(status.status);
      during.codes.add(status.body?.error?.code);
      during.health.add((await request(url, null, 'GET', '/healthz')).status);
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(service.exitCode).toBeNull();
    expect([...during.ready]).toEqual([503]);
    expect([...during.status]).toEqual([503]);
    expect([...during.codes]).toEqual(['database_unavailable']);
    expect([...during.health]).toEqual([200]);

    server = await startEmbeddedPostgres({ dataDir, port });
    const upAt = Date.now();
    await waitFor(async () => (await request(url, null, 'GET', '/readyz')).status === 200, 60_000, '/readyz to answer 200');
    const readySeconds = (Date.now() - upAt) / 1000;
    await waitFor(async () => ['completed', 'failed'].includes((await dbState(id))?.status), 90_000, 'the load to finish');
    const doneSeconds = (Date.now() - upAt) / 1000;
    console.log(`database back: ready after ${readySeconds.toFixed(1)} s, load completed after ${doneSeconds.toFixed(1)} s`);

    const state = await dbState(id);
    expect(state).toMatchObject({ status: 'completed', rows_processed: rows, total: rows, distinct: rows });
    expect(state.attempt).toBeGreaterThanOrEqual(2);
    const status = await request(url, key, 'GET', `/uploads/${id}`);
    expect(status.body).toMatchObject({ status: 'completed', rowsProcessed: rows });
    expect(service.exitCode).toBeNull();
    expect(output).not.toMatch(/Unhandled|triggerUncaughtException|uncaught/i);
  }, 240_000);
});

async function dbState(id: string) {
  const client = new pg.Client({ connectionString: server!.url });
  client.on('error', () => {});
  await client.connect();
  try {
    const { rows } = await client.query(
      `SELECT status, attempt, rows_processed::int,
              (SELECT count(*)::int FROM webhook_events WHERE upload_id = $1) AS total,
              (SELECT count(DISTINCT line_number)::int FROM webhook_events WHERE upload_id = $1) AS distinct
         FROM uploads WHERE id = $1`,
      [id],
    );
    return rows[0];
  } finally {
    await client.end();
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}
