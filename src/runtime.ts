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

export interface Runtime {
  config: Readonly<Config>;
  databaseUrl: string;
  pool: pg.Pool;
  db: Kysely<DB>;
  store: ObjectStore;
  logger: Logger;
  embedded: { postgres: boolean; s3: boolean };
  close(): Promise<void>;
}

export async function openRuntime(config: Readonly<Config>, logger: Logger, applicationName: string): Promise<Runtime> {
  const stops: (() => Promise<void>)[] = [];
  let databaseUrl = config.databaseUrl;
  if (!databaseUrl) {
    const pgServer = await startEmbeddedPostgres({
      dataDir: config.dataDir,
      port: config.embeddedPgPort,
      log: (msg) => logger.info(msg),
    });
    stops.push(pgServer.stop);
    databaseUrl = pgServer.url;
    logger.info({ port: config.embeddedPgPort }, 'embedded PostgreSQL started (set DATABASE_URL to use your own)');
  }
  let endpoint = config.s3.endpoint;
  if (!endpoint) {
    const s3 = await startEmbeddedS3({ dataDir: config.dataDir, port: config.embeddedS3Port, bucket: config.s3.bucket });
    stops.push(s3.stop);
    endpoint = s3.endpoint;
    logger.info({ endpoint }, 'embedded S3 server started (set S3_ENDPOINT to use your own)');
  }
  const pool = createPool(databaseUrl, applicationName, 20);
  const db = createDb(pool);
  const store = new ObjectStore({ ...config.s3, endpoint });
  await store.ensureBucket();
  return {
    config,
    databaseUrl,
    pool,
    db,
    store,
    logger,
    embedded: { postgres: !config.databaseUrl, s3: !config.s3.endpoint },
    async close() {
      store.destroy();
      await db.destroy(); // also ends the pool
      for (const stop of stops.reverse()) await stop().catch(() => {});
    },
  };
}
