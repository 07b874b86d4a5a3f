// Resolves where Postgres and object storage are (real ones from config, or embedded stand-ins
// under DATA_DIR) and opens the shared clients. Application code only ever sees pg + the AWS SDK.
import type { Kysely } from 'kysely';
import type pg from 'pg';
import type { Config } from './config.ts';
import { startEmbeddedPostgres } from './db/embedded-postgres.ts';
import { createDb, createPool } from './db/pool.ts';
import type { DB } from './db/schema.ts';
import type { Logger } from './logger.ts';
import { startEmbeddedS3 } from './storage/embedded-s3.ts';
import { ObjectStore } from './storage/object-store.ts';

/** What commands that need only the database get (`migrate`, `keys`, `tenants`). */
export interface DatabaseRuntime {
  config: Readonly<Config>;
  databaseUrl: string;
  pool: pg.Pool;
  db: Kysely<DB>;
  logger: Logger;
  /** Closes the clients, then lets go of what this runtime started (see startEmbeddedPostgres). */
  close(): Promise<void>;
}

export interface Runtime extends DatabaseRuntime {
  store: ObjectStore;
  /** the S3 endpoint in use (the embedded server's when S3_ENDPOINT is unset) */
  s3Endpoint: string;
  embedded: { postgres: boolean; s3: boolean };
}

/**
 * The database only: DATABASE_URL, else the embedded PostgreSQL of DATA_DIR — the running one (a
 * `serve` in another terminal) or one started for this process. Never starts an object store.
 * On failure everything it started is stopped again before it throws.
 */
export async function openDatabase(config: Readonly<Config>, logger: Logger, applicationName: string): Promise<DatabaseRuntime> {
  const cleanup = new Cleanup(logger);
  try {
    const { databaseUrl, pool, db } = await connectDatabase(config, logger, applicationName, cleanup);
    return { config, databaseUrl, pool, db, logger, close: () => cleanup.run() };
  } catch (err) {
    await cleanup.run();
    throw err;
  }
}

/**
 * The database (as openDatabase) and the object store: S3_ENDPOINT, else an embedded S3 server
 * started for this process on EMBEDDED_S3_PORT. The bucket is created if missing. On failure
 * everything it started is stopped again before it throws (no orphan PostgreSQL).
 */
export async function openRuntime(config: Readonly<Config>, logger: Logger, applicationName: string): Promise<Runtime> {
  const cleanup = new Cleanup(logger);
  try {
    const { databaseUrl, pool, db } = await connectDatabase(config, logger, applicationName, cleanup);
    let endpoint = config.s3.endpoint;
    if (!endpoint) {
      const s3 = await startEmbeddedS3({
        dataDir: config.dataDir,
        port: config.embeddedS3Port,
        bucket: config.s3.bucket,
        logger,
        // a resumable upload may sit paused until it expires: its parts must outlive a restart until then
        staleUploadMs: config.tus.expirySeconds * 1000,
      });
      cleanup.push('embedded S3 server', () => s3.stop());
      endpoint = s3.endpoint;
      logger.info({ endpoint }, 'embedded S3 server started (set S3_ENDPOINT to use your own)');
    }
    const store = new ObjectStore({ ...config.s3, endpoint }, config.uploads);
    cleanup.push('object store client', async () => store.destroy());
    await store.ensureBucket();
    return {
      config,
      databaseUrl,
      pool,
      db,
      store,
      s3Endpoint: endpoint,
      logger,
      embedded: { postgres: !config.databaseUrl, s3: !config.s3.endpoint },
      close: () => cleanup.run(),
    };
  } catch (err) {
    await cleanup.run();
    throw err;
  }
}

async function connectDatabase(config: Readonly<Config>, logger: Logger, applicationName: string, cleanup: Cleanup) {
  let databaseUrl = config.databaseUrl;
  if (!databaseUrl) {
    const embedded = await startEmbeddedPostgres({
      dataDir: config.dataDir,
      port: config.embeddedPgPort,
      log: (msg) => logger.info(msg),
    });
    cleanup.push('embedded PostgreSQL', () => embedded.stop());
    databaseUrl = embedded.url;
    if (embedded.startedHere) logger.info({ port: embedded.port }, 'embedded PostgreSQL started (set DATABASE_URL to use your own)');
  }
  const pool = createPool(databaseUrl, applicationName, 20);
  const db = createDb(pool);
  cleanup.push('database pool', async () => {
    await db.destroy(); // ends the pool only if a query went through Kysely
    if (!pool.ended) await pool.end();
  });
  return { databaseUrl, pool, db };
}

/** What was opened, closed in reverse order, once; a step that fails is logged and the rest still run. */
class Cleanup {
  private readonly steps: { name: string; run: () => Promise<void> }[] = [];
  private done: Promise<void> | null = null;

  constructor(private readonly logger: Logger) {}

  push(name: string, run: () => Promise<void>): void {
    this.steps.push({ name, run });
  }

  run(): Promise<void> {
    return (this.done ??= (async () => {
      for (const step of this.steps.reverse()) {
        await step.run().catch((err: unknown) => this.logger.warn({ err }, `closing the ${step.name} failed`));
      }
    })());
  }
}
