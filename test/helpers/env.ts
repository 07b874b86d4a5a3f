// Per test file: a fresh database copied from the migrated template, a bucket of its own, and
// helpers to run the real app on a real socket.
import { randomBytes } from 'node:crypto';
import { CreateBucketCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, inject } from 'vitest';
import type { FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import type pg from 'pg';
import { loadConfig, type Config } from '../../src/config.ts';
import { createDb, createPool } from '../../src/db/pool.ts';
import type { DB } from '../../src/db/schema.ts';
import { buildApp } from '../../src/http/app.ts';
import { createLogger, type Logger } from '../../src/logger.ts';
import { ObjectStore } from '../../src/storage/object-store.ts';
import { createApiKey, ensureTenant } from '../../src/tenants/tenants.repository.ts';
import { adminQuery, withDatabase } from './global-setup.ts';

/** A row of graphile-worker's public jobs view (the payload is not in it: the job key names the upload). */
export interface JobRow {
  id: string;
  task_identifier: string;
  key: string | null;
  attempts: number;
  max_attempts: number;
  locked_at: Date | null;
  locked_by: string | null;
  last_error: string | null;
}

export interface TestEnv {
  config: Readonly<Config>;
  databaseUrl: string;
  pool: pg.Pool;
  db: Kysely<DB>;
  store: ObjectStore;
  s3: S3Client;
  logger: Logger;
  /** env vars that point a child process at this database and bucket */
  env: Record<string, string>;
  newTenantKey(name?: string): Promise<{ tenantId: string; key: string }>;
  listObjects(prefix?: string): Promise<string[]>;
  /** graphile-worker jobs of this upload (its job key), read through the public `graphile_worker.jobs` view */
  jobsFor(uploadId: string): Promise<JobRow[]>;
  close(): Promise<void>;
}

export async function createTestEnv(overrides: Record<string, string> = {}): Promise<TestEnv> {
  const suffix = randomBytes(4).toString('hex');
  const database = `stream_api_test_${suffix}`;
  const adminUrl = inject('adminUrl');
  await adminQuery(adminUrl, `CREATE DATABASE ${database} TEMPLATE ${inject('templateDb')}`);
  const databaseUrl = withDatabase(adminUrl, database);
  const bucket = `test-${suffix}`;
  const env = {
    DATABASE_URL: databaseUrl,
    S3_ENDPOINT: inject('s3Endpoint'),
    S3_BUCKET: bucket,
    S3_ACCESS_KEY_ID: 'S3RVER',
    S3_SECRET_ACCESS_KEY: 'S3RVER',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    DEV_API_KEY: 'false',
    ...overrides,
  };
  const config = loadConfig(env);
  const logger = createLogger(config.logLevel);
  const pool = createPool(databaseUrl, 'stream-api:test', 10);
  const db = createDb(pool);
  const store = new ObjectStore({ ...config.s3, endpoint: config.s3.endpoint }, config.uploads);
  const s3 = new S3Client({
    endpoint: config.s3.endpoint!,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));

  return {
    config,
    databaseUrl,
    pool,
    db,
    store,
    s3,
    logger,
    env,
    async newTenantKey(name = `t-${randomBytes(4).toString('hex')}`) {
      const tenant = await ensureTenant(db, name);
      return { tenantId: tenant.id, key: await createApiKey(db, tenant.id) };
    },
    async listObjects(prefix = '') {
      const res = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
      return (res.Contents ?? []).map((o) => o.Key!);
    },
    async jobsFor(uploadId: string) {
      const { rows } = await pool.query<JobRow>(
        `SELECT id::text, task_identifier, key, attempts, max_attempts, locked_at, locked_by, last_error
           FROM graphile_worker.jobs WHERE key = $1`,
        [`upload:${uploadId}`],
      );
      return rows;
    },
    async close() {
      store.destroy();
      s3.destroy();
      await db.destroy();
      await adminQuery(adminUrl, `DROP DATABASE IF EXISTS ${database} WITH (FORCE)`).catch(() => {});
    },
  };
}

/** The real app on a real loopback socket. */
export async function startApi(t: TestEnv, beforeRoutes?: (app: FastifyInstance) => void) {
  const app = await buildApp({ config: t.config, db: t.db, pool: t.pool, store: t.store, logger: t.logger }, beforeRoutes);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  if (!address || typeof address === 'string') throw new Error('no address');
  return { app, url: `http://127.0.0.1:${address.port}`, close: () => app.close() };
}

export type TestApi = Awaited<ReturnType<typeof startApi>>;

/**
 * The usual setup of an integration file: a test environment (a database and a bucket of its own) and
 * the real app on a loopback socket, made before the file's tests and closed after them (after the
 * file's own afterAll hooks, which run first). Read `.t` and `.api` inside hooks and tests.
 */
export function useApi(overrides: Record<string, string> = {}): { readonly t: TestEnv; readonly api: TestApi } {
  let t: TestEnv | undefined;
  let api: TestApi | undefined;
  beforeAll(async () => {
    t = await createTestEnv(overrides);
    api = await startApi(t);
  });
  afterAll(async () => {
    await api?.close();
    await t?.close();
  });
  return {
    get t() {
      if (!t) throw new Error('useApi: the environment exists only inside hooks and tests');
      return t;
    },
    get api() {
      if (!api) throw new Error('useApi: the API exists only inside hooks and tests');
      return api;
    },
  };
}
