// Migrations against a real PostgreSQL: applied once, in order, with their checksums; an edited or
// out-of-order file stops the run before anything is applied.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { migrate } from '../../src/db/migrate.ts';
import { MigrationHistoryError } from '../../src/db/migration-plan.ts';
import { createPool } from '../../src/db/pool.ts';
import { adminQuery, withDatabase } from '../helpers/global-setup.ts';

let dir: string;
let pool: pg.Pool;
let database: string;

beforeAll(async () => {
  database = `stream_api_migrate_${randomBytes(4).toString('hex')}`;
  await adminQuery(inject('adminUrl'), `CREATE DATABASE ${database}`);
  pool = createPool(withDatabase(inject('adminUrl'), database), 'stream-api:test', 2);
  dir = await mkdtemp(path.join(os.tmpdir(), 'stream-api-migrations-'));
});
afterAll(async () => {
  await pool?.end();
  await adminQuery(inject('adminUrl'), `DROP DATABASE IF EXISTS ${database} WITH (FORCE)`).catch(() => {});
  if (dir) await rm(dir, { recursive: true, force: true });
});

const tables = async () =>
  (await pool.query(`SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE 't\\_%' ORDER BY 1`)).rows.map((r) => r.tablename);

describe('migrate', () => {
  it('applies in order once, records checksums, and refuses an edited or out-of-order file', async () => {
    await writeFile(path.join(dir, '002_b.sql'), 'CREATE TABLE t_b (id int REFERENCES t_a (id));');
    await writeFile(path.join(dir, '001_a.sql'), 'CREATE TABLE t_a (id int PRIMARY KEY);');
    expect(await migrate(pool, () => {}, dir)).toEqual(['001_a.sql', '002_b.sql']);
    expect(await migrate(pool, () => {}, dir)).toEqual([]);
    const { rows } = await pool.query('SELECT name, length(checksum) AS n FROM schema_migrations ORDER BY name');
    expect(rows).toEqual([{ name: '001_a.sql', n: 64 }, { name: '002_b.sql', n: 64 }]);

    // An applied migration edited afterwards: refused, and a pending one with it is not applied.
    await writeFile(path.join(dir, '001_a.sql'), 'CREATE TABLE t_a (id bigint PRIMARY KEY);');
    await writeFile(path.join(dir, '003_c.sql'), 'CREATE TABLE t_c (id int);');
    await expect(migrate(pool, () => {}, dir)).rejects.toThrow(MigrationHistoryError);
    await expect(migrate(pool, () => {}, dir)).rejects.toThrow(/001_a\.sql was edited after it was applied/);
    expect(await tables()).toEqual(['t_a', 't_b']);

    // Restored: 003 applies. Then a lower-numbered file added later is refused.
    await writeFile(path.join(dir, '001_a.sql'), 'CREATE TABLE t_a (id int PRIMARY KEY);');
    expect(await migrate(pool, () => {}, dir)).toEqual(['003_c.sql']);
    await writeFile(path.join(dir, '002_a_late.sql'), 'CREATE TABLE t_late (id int);');
    await expect(migrate(pool, () => {}, dir)).rejects.toThrow(/002_a_late\.sql is new but sorts before 003_c\.sql/);
    expect(await tables()).toEqual(['t_a', 't_b', 't_c']);
  });

  it('a database migrated before checksums were kept gets them recorded, then checked', async () => {
    await rm(path.join(dir, '002_a_late.sql'));
    await pool.query('UPDATE schema_migrations SET checksum = NULL');
    const log: string[] = [];
    expect(await migrate(pool, (m) => log.push(m), dir)).toEqual([]);
    expect(log.filter((l) => /recorded the checksum/.test(l))).toHaveLength(3);
    const { rows } = await pool.query('SELECT count(*)::int AS n FROM schema_migrations WHERE checksum IS NULL');
    expect(rows[0].n).toBe(0);
  });
});
