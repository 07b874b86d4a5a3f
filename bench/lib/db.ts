// A throw-away database for one bench run, on the server DATABASE_URL points at.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { migrate } from '../../src/db/migrate.ts';
import { createDb, createPool } from '../../src/db/pool.ts';
import { createApiKey, ensureTenant } from '../../src/tenants/tenants.repository.ts';
import { onCleanup } from './cleanup.ts';

export const DEFAULT_ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

export function randomDatabaseName(): string {
  return `bench_${randomBytes(5).toString('hex')}`;
}

/** Runs one statement on a short-lived connection to the admin database (CREATE/DROP DATABASE). */
export async function adminExec(adminUrl: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl, application_name: 'stream-api-bench-admin' });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** `bench_<hex>` names only: nothing else is ever dropped. */
export async function dropBenchDatabase(adminUrl: string, name: string): Promise<void> {
  if (!/^bench_[0-9a-f]{10}$/.test(name)) throw new Error(`refusing to drop ${name}`);
  await adminExec(adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
}

/**
 * A database bench_<random> on the server of `adminUrl`, migrated, with one tenant and an API key of
 * it; dropped at cleanup (bench/lib/cleanup.ts). `applicationName` names the bench's own connections.
 */
export async function createBenchDatabase(adminUrl: string, applicationName: string, tenant: string) {
  const name = randomDatabaseName();
  await adminExec(adminUrl, `CREATE DATABASE ${name}`);
  onCleanup(() => dropBenchDatabase(adminUrl, name));
  const databaseUrl = withDatabase(adminUrl, name);
  const pool = createPool(databaseUrl, applicationName, 2);
  const db = createDb(pool);
  onCleanup(() => db.destroy());
  await migrate(pool);
  const tenantId = (await ensureTenant(db, tenant)).id;
  return { name, databaseUrl, pool, db, tenantId, apiKey: await createApiKey(db, tenantId) };
}
