// Once per test run: a Postgres (DATABASE_URL, else an embedded one) with a template database migrated
// once — each test file then gets its own copy — and an S3-protocol server (S3_ENDPOINT, else s3rver).
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import pg from 'pg';
import { startEmbeddedPostgres } from '../../src/db/embedded-postgres.ts';
import { migrate } from '../../src/db/migrate.ts';
import { createPool } from '../../src/db/pool.ts';
import { startEmbeddedS3 } from '../../src/storage/embedded-s3.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    adminUrl: string;
    templateDb: string;
    s3Endpoint: string;
  }
}

export default async function setup(project: TestProject) {
  const cleanups: (() => Promise<unknown>)[] = [];
  let adminUrl = process.env.DATABASE_URL;
  if (!adminUrl) {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'stream-api-test-pg-'));
    await chmod(dir, 0o755); // as root, Postgres runs as the `postgres` user and must reach its data dir
    const port = 55000 + (process.pid % 5000);
    const server = await startEmbeddedPostgres({ dataDir: dir, port });
    adminUrl = server.url;
    cleanups.push(() => server.stop(), () => rm(dir, { recursive: true, force: true }));
  }

  const templateDb = `stream_api_tpl_${process.pid}`;
  await adminQuery(adminUrl, `DROP DATABASE IF EXISTS ${templateDb}`);
  await adminQuery(adminUrl, `CREATE DATABASE ${templateDb}`);
  // The service's own pool (error listeners included): graphile-worker's migration warns about a pool without them.
  const pool = createPool(withDatabase(adminUrl, templateDb), 'stream-api:test-setup', 2);
  try {
    await migrate(pool);
  } finally {
    await pool.end();
  }
  cleanups.unshift(() => adminQuery(adminUrl, `DROP DATABASE IF EXISTS ${templateDb} WITH (FORCE)`));

  let s3Endpoint = process.env.S3_ENDPOINT;
  if (!s3Endpoint) {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'stream-api-test-s3-'));
    const s3 = await startEmbeddedS3({ dataDir: dir, port: 0, bucket: 'stream-api-test' });
    s3Endpoint = s3.endpoint;
    cleanups.push(() => s3.stop(), () => rm(dir, { recursive: true, force: true }));
  }

  project.provide('adminUrl', adminUrl);
  project.provide('templateDb', templateDb);
  project.provide('s3Endpoint', s3Endpoint);

  return async () => {
    for (const cleanup of cleanups) await cleanup().catch(() => {});
  };
}

export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

export async function adminQuery(url: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}
