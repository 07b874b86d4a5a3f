// SQL for dataset definitions and their tables. Every read and write takes the caller's tenant id:
// another tenant's dataset is invisible. Definition changes of one tenant are serialised (an advisory
// lock), and wait at most DDL_LOCK_TIMEOUT for a load that holds the dataset (dataset_busy after that).
import { sql, type Kysely, type Selectable, type Transaction } from 'kysely';
import type pg from 'pg';
import type { DB, DatasetsTable } from '../db/schema.ts';
import { AppError } from '../errors.ts';
import { createTableSql, planChange, qualifiedTable } from './ddl.ts';
import { canonicalJson, type DatasetSpec } from './definition.ts';
import { tenantSchema } from './identifiers.ts';

export type DatasetRow = Selectable<DatasetsTable>;

/** How long a definition change waits for a running load of the dataset before answering dataset_busy. */
const DDL_LOCK_TIMEOUT = '5s';
/** SQLSTATE lock_not_available: lock_timeout passed. */
const LOCK_NOT_AVAILABLE = '55P03';
/** SQLSTATE unique_violation: here, a key added to a table whose rows repeat it. */
const UNIQUE_VIOLATION = '23505';

export type ApplyOutcome = 'created' | 'updated' | 'unchanged';

export async function findDataset(db: Kysely<DB>, tenantId: string, name: string): Promise<DatasetRow | undefined> {
  return db.selectFrom('datasets').selectAll().where('tenant_id', '=', tenantId).where('name', '=', name).executeTakeFirst();
}

export async function listDatasets(db: Kysely<DB>, tenantId: string): Promise<DatasetRow[]> {
  return db.selectFrom('datasets').selectAll().where('tenant_id', '=', tenantId).orderBy('name').execute();
}

/** Versions of a dataset, oldest first. */
export async function listDatasetVersions(db: Kysely<DB>, tenantId: string, name: string) {
  return db
    .selectFrom('dataset_versions')
    .select(['version', 'definition', 'applied_sql', 'created_at'])
    .where('tenant_id', '=', tenantId)
    .where('name', '=', name)
    .orderBy('version')
    .execute();
}

/** Runs `fn` in a transaction holding the tenant's definition lock, mapping a lock wait that timed out to dataset_busy. */
async function withDefinitionLock<T>(db: Kysely<DB>, tenantId: string, fn: (trx: Transaction<DB>) => Promise<T>): Promise<T> {
  try {
    return await db.transaction().execute(async (trx) => {
      await sql`SELECT pg_advisory_xact_lock(hashtextextended(${'datasets:' + tenantId}, 0))`.execute(trx);
      await sql.raw(`SET LOCAL lock_timeout = '${DDL_LOCK_TIMEOUT}'`).execute(trx);
      return fn(trx);
    });
  } catch (err) {
    if ((err as { code?: unknown }).code === LOCK_NOT_AVAILABLE) throw new AppError('dataset_busy', undefined, { cause: err });
    throw err;
  }
}

/**
 * Makes the tenant's dataset match `spec` in one transaction: creates the table (version 1), or applies
 * an additive change (a new version), or does nothing when the normal forms are equal (`unchanged`:
 * applying the same definition twice keeps the version). `createOnly` refuses an existing name
 * (dataset_exists). Throws AppError dataset_change_refused (with the reason) or dataset_busy.
 */
export async function applyDataset(
  db: Kysely<DB>,
  tenantId: string,
  spec: DatasetSpec,
  opts: { createOnly: boolean },
): Promise<{ outcome: ApplyOutcome; row: DatasetRow }> {
  const schema = tenantSchema(tenantId);
  return withDefinitionLock(db, tenantId, async (trx) => {
    const current = await trx
      .selectFrom('datasets')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('name', '=', spec.name)
      .forUpdate()
      .executeTakeFirst();
    const definition = JSON.stringify(spec);
    if (current && opts.createOnly) throw new AppError('dataset_exists', `dataset "${spec.name}" exists (version ${current.version}); change it with PUT /datasets/${spec.name}`);
    if (current && canonicalJson(current.definition) === canonicalJson(spec)) return { outcome: 'unchanged' as const, row: current };

    let statements: string[];
    if (current) {
      const plan = planChange(schema, current.definition as DatasetSpec, spec);
      if (!plan.ok) throw new AppError('dataset_change_refused', `dataset "${spec.name}": ${plan.reason}`);
      statements = plan.statements;
    } else {
      statements = createTableSql(schema, spec);
    }
    for (const statement of statements) {
      try {
        await sql.raw(statement).execute(trx);
      } catch (err) {
        const pgErr = err as { code?: unknown; detail?: unknown };
        if (pgErr.code !== UNIQUE_VIOLATION) throw err;
        // detail: "Key (sku)=(A-1) is duplicated." — the loaded rows' values, the tenant's own data
        const detail = typeof pgErr.detail === 'string' ? ` (${pgErr.detail.replace(/\.$/, '')})` : '';
        throw new AppError('dataset_change_refused', `dataset "${spec.name}": the key ${JSON.stringify(spec.key)} cannot be added: rows already loaded repeat it${detail}`, { cause: err });
      }
    }
    const version = (current?.version ?? 0) + 1;
    const row = current
      ? await trx
          .updateTable('datasets')
          .set({ version, definition, updated_at: sql`now()` })
          .where('tenant_id', '=', tenantId)
          .where('name', '=', spec.name)
          .returningAll()
          .executeTakeFirstOrThrow()
      : await trx.insertInto('datasets').values({ tenant_id: tenantId, name: spec.name, version, definition }).returningAll().executeTakeFirstOrThrow();
    await trx
      .insertInto('dataset_versions')
      .values({ tenant_id: tenantId, name: spec.name, version, definition, applied_sql: statements })
      .execute();
    return { outcome: current ? ('updated' as const) : ('created' as const), row };
  });
}

/**
 * Drops the dataset's table and its definition (with every version). Refused with dataset_in_use while
 * an upload naming it is not finished (uploaded or processing). False when there is no such dataset.
 */
export async function deleteDataset(db: Kysely<DB>, tenantId: string, name: string): Promise<boolean> {
  return withDefinitionLock(db, tenantId, async (trx) => {
    const current = await trx
      .selectFrom('datasets')
      .select('version')
      .where('tenant_id', '=', tenantId)
      .where('name', '=', name)
      .forUpdate()
      .executeTakeFirst();
    if (!current) return false;
    // Uploads take a share lock on the definition row when they are accepted: none can start now.
    const busy = await trx
      .selectFrom('uploads')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .where('tenant_id', '=', tenantId)
      .where('dataset', '=', name)
      .where('status', 'in', ['uploaded', 'processing'])
      .executeTakeFirstOrThrow();
    if (Number(busy.n) > 0) throw new AppError('dataset_in_use', `${busy.n} upload(s) of dataset "${name}" are not finished; wait for them (or let them fail) and try again`);
    await sql.raw(`DROP TABLE IF EXISTS ${qualifiedTable(tenantSchema(tenantId), name)}`).execute(trx);
    await trx.deleteFrom('datasets').where('tenant_id', '=', tenantId).where('name', '=', name).execute();
    return true;
  });
}

/**
 * The current version (and key and input format) of a tenant's dataset, share-locked for the caller's transaction (so it cannot be
 * changed or deleted before that commits); undefined when there is none. Used where an upload is accepted.
 */
export async function shareDatasetVersion(
  trx: Transaction<DB>,
  tenantId: string,
  name: string,
): Promise<{ version: number; key?: string[]; format?: DatasetSpec['format'] } | undefined> {
  const row = await trx
    .selectFrom('datasets')
    .select(['version', 'definition'])
    .where('tenant_id', '=', tenantId)
    .where('name', '=', name)
    .forShare()
    .executeTakeFirst();
  const spec = row?.definition as DatasetSpec | undefined;
  return row && { version: row.version, key: spec!.key, format: spec!.format };
}

/**
 * The loader's read of a definition, on its own connection inside the load transaction (raw pg, like
 * the COPY path): share-locked until the load commits, so no change or delete lands mid-load.
 */
export async function lockDatasetForLoad(
  client: pg.ClientBase,
  tenantId: string,
  name: string,
): Promise<{ version: number; spec: DatasetSpec } | undefined> {
  const { rows } = await client.query<{ version: number; definition: DatasetSpec }>(
    'SELECT version, definition FROM datasets WHERE tenant_id = $1 AND name = $2 FOR SHARE',
    [tenantId, name],
  );
  const row = rows[0];
  return row && { version: row.version, spec: row.definition };
}
