import pg from 'pg';
import { Kysely, PostgresDialect } from 'kysely';
import type { DB } from './schema.ts';

// bigint/int8 columns (row counts, byte sizes) fit easily in a JS number for any file we accept.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number(value));

/** A connect that gets no answer (a host gone from the network) fails after this, instead of hanging. */
const CONNECT_TIMEOUT_MS = 30_000;

/**
 * The process's pool. It survives a database restart: every connection error is listened for (an
 * unhandled 'error' event would end the process), broken connections are dropped, and new ones are
 * opened on demand once the server answers again. TCP keep-alive notices a silently dead peer.
 */
export function createPool(connectionString: string, applicationName: string, max = 10): pg.Pool {
  const pool = new pg.Pool({
    connectionString,
    max,
    application_name: applicationName,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    keepAlive: true,
  });
  // An idle client losing its connection (e.g. Postgres restart) must not crash the process; pg
  // removes it from the pool by itself.
  pool.on('error', () => {});
  // A checked-out client's connection error also rejects its query; this only keeps it from being
  // an unhandled 'error' event.
  pool.on('connect', (client) => client.on('error', () => {}));
  return pool;
}

export function createDb(pool: pg.Pool): Kysely<DB> {
  return new Kysely<DB>({ dialect: new PostgresDialect({ pool }) });
}
