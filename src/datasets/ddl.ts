// The SQL that makes a tenant's table match its definition: CREATE TABLE for a new dataset, and for a
// changed one either the ALTER TABLE statements of an additive change or the reason it is refused.
// Pure: builds text only. Every identifier is quoted and every value is a quoted literal.
import { createHash } from 'node:crypto';
import type { ColumnSpec, DatasetSpec } from './definition.ts';
import { quoteIdentifier as id, quoteLiteral as literal } from './identifiers.ts';

/** `"t_…"."name"` */
export function qualifiedTable(schema: string, name: string): string {
  return `${id(schema)}.${id(name)}`;
}

/** The column's PostgreSQL type: text with a maxLength is varchar(n) (both count characters); enum is text + CHECK. */
export function sqlType(col: ColumnSpec): string {
  if (col.type === 'text') return col.maxLength === undefined ? 'text' : `varchar(${col.maxLength})`;
  if (col.type === 'enum') return 'text';
  return col.type; // integer, bigint, numeric[(p,s)], boolean, uuid, date, timestamptz, jsonb: already canonical
}

/** Name of an enum column's CHECK constraint: a hash, since `<column>_…` could pass 63 characters. */
export function enumConstraint(col: ColumnSpec): string {
  return `values_${createHash('sha256').update(col.name).digest('hex').slice(0, 16)}`;
}

function enumCheck(col: ColumnSpec): string {
  return `CONSTRAINT ${id(enumConstraint(col))} CHECK (${id(col.name)} IN (${col.values!.map(literal).join(', ')}))`;
}

function defaultClause(col: ColumnSpec): string {
  return `DEFAULT ${literal(col.default!)}::${sqlType(col)}`;
}

function columnSql(col: ColumnSpec): string {
  const parts = [id(col.name), sqlType(col)];
  if (col.required) parts.push('NOT NULL');
  if (col.default !== undefined) parts.push(defaultClause(col));
  if (col.type === 'enum') parts.push(enumCheck(col));
  return parts.join(' ');
}

/**
 * The unique index an upsert's `ON CONFLICT (key)` infers. Unnamed: PostgreSQL picks a name free in the
 * tenant's schema (a fixed one would collide between tables; `<table>_key` could pass 63 characters).
 */
export function keyConstraint(key: readonly string[]): string {
  return `UNIQUE (${key.map(id).join(', ')})`;
}

/**
 * How a dataset table finds one upload's rows (`WHERE upload_id = $1`: the undo of a load, a load's
 * rows): a BRIN index on upload_id with the bloom operator class. A load appends its rows in one COPY,
 * so they fill contiguous pages, and each block range of 32 pages (256 KiB) keeps a small bloom filter
 * of the upload ids in it: a query reads the ranges that hold the upload (and ~1% of the others), the
 * index is a few KiB, and a load pays next to nothing for it, where the unique (upload_id,
 * line_number) btree of earlier versions made a `COPY` about 2.5× slower (README, "Dataset table
 * design"). Bloom rather than minmax: upload ids are random, so a range shared by two loads (their
 * boundary, concurrent loads, rows an upsert moved, freed space reused) would span a random interval
 * with minmax and match a third of other queries. autosummarize: autovacuum summarises each range once
 * it is full; ranges not yet summarised are always read (lossy, never wrong). Exactly-once does not
 * need a unique index: a load is one transaction that commits only while its attempt is current
 * (src/ingest/upload-state.ts).
 */
export const UPLOAD_INDEX = { method: 'brin', opclass: 'uuid_bloom_ops', pagesPerRange: 32 } as const;

/** `CREATE INDEX` of the upload index. Unnamed: PostgreSQL picks a name free in the schema (`<table>_upload_id_idx`). */
export function uploadIndexSql(schema: string, name: string): string {
  const { method, opclass, pagesPerRange } = UPLOAD_INDEX;
  return `CREATE INDEX ON ${qualifiedTable(schema, name)} USING ${method} (upload_id ${opclass}) WITH (pages_per_range = ${pagesPerRange}, autosummarize = on)`;
}

/**
 * Run first in a transaction that finds a dataset's rows by upload (`WHERE upload_id = $1`). Upload ids
 * are random (v4), so the column's correlation statistic is near 0, and BRIN costing divides by it: the
 * planner may price the index scan as reading every range and pick a sequential scan of the whole
 * table, although one load's rows are contiguous (it often picks the index, not always). This setting
 * (SET LOCAL: this transaction only) makes it take the index.
 */
export const BY_UPLOAD_PLAN = 'SET LOCAL enable_seqscan = off';

/**
 * The statements that create the tenant's schema (if needed), the dataset's table and its upload
 * index. Like webhook_events: upload_id from the load's `app.upload_id` setting, line_number from the
 * file; the key's unique index when there is a key (an upsert's ON CONFLICT infers it).
 */
export function createTableSql(schema: string, spec: DatasetSpec): string[] {
  const columns = [
    `upload_id uuid NOT NULL DEFAULT current_setting('app.upload_id')::uuid`,
    'line_number bigint NOT NULL',
    ...spec.columns.map(columnSql),
    ...(spec.key ? [keyConstraint(spec.key)] : []),
  ];
  return [
    `CREATE SCHEMA IF NOT EXISTS ${id(schema)}`,
    `CREATE TABLE ${qualifiedTable(schema, spec.name)} (\n  ${columns.join(',\n  ')}\n)`,
    uploadIndexSql(schema, spec.name),
  ];
}

export type ChangePlan = { ok: true; statements: string[] } | { ok: false; reason: string };

const sameList = (a?: readonly string[], b?: readonly string[]) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

/**
 * What changing `from` into `to` takes. Additive changes are planned (new optional column, a column no
 * longer required, a longer or no maxLength, more enum values, a pattern removed, a default set or
 * dropped, aliases); anything that could drop, retype or invalidate data already loaded is refused
 * with the reason: a column removed or retyped, a new required column, a constraint added or tightened,
 * a changed or removed key. A key added where there was none is additive: its unique index is built
 * (rows already loaded that repeat it make the ALTER fail; applyDataset refuses that with the reason).
 */
export function planChange(schema: string, from: DatasetSpec, to: DatasetSpec): ChangePlan {
  const table = qualifiedTable(schema, to.name);
  const refuse = (reason: string): ChangePlan => ({ ok: false, reason });
  const keyAdded = from.key === undefined && to.key !== undefined;
  if (!keyAdded && !sameList(from.key, to.key)) return refuse(`the key cannot change (from ${JSON.stringify(from.key ?? [])} to ${JSON.stringify(to.key ?? [])})`);
  const next = new Map(to.columns.map((c) => [c.name, c]));
  const actions: string[] = [];
  for (const old of from.columns) {
    const col = next.get(old.name);
    if (!col) return refuse(`column "${old.name}" would be dropped; a column cannot be removed`);
    const column = id(col.name);
    if (col.type !== old.type) return refuse(`column "${col.name}" would change type from ${old.type} to ${col.type}; a column cannot be retyped`);
    if (col.required && !old.required) return refuse(`column "${col.name}" would become required; rows already loaded may lack it`);
    if (old.required && !col.required) actions.push(`ALTER COLUMN ${column} DROP NOT NULL`);
    if (old.maxLength !== col.maxLength) {
      if (col.maxLength !== undefined && (old.maxLength === undefined || col.maxLength < old.maxLength)) {
        return refuse(`column "${col.name}" would get a shorter maxLength; rows already loaded may be longer`);
      }
      actions.push(`ALTER COLUMN ${column} TYPE ${sqlType(col)}`); // longer varchar or text: no rewrite
    }
    if (old.pattern !== col.pattern && col.pattern !== undefined) {
      return refuse(`column "${col.name}" would get a new pattern; rows already loaded may not match it (only removing a pattern is allowed)`);
    }
    if (!sameList(old.values, col.values)) {
      const missing = (old.values ?? []).filter((v) => !col.values!.includes(v));
      if (missing.length > 0) return refuse(`column "${col.name}" would lose enum value(s) ${missing.map((v) => JSON.stringify(v)).join(', ')}; rows already loaded may hold them`);
      actions.push(`DROP CONSTRAINT ${id(enumConstraint(col))}`, `ADD ${enumCheck(col)}`);
    }
    if (old.default !== col.default) actions.push(`ALTER COLUMN ${column} ${col.default === undefined ? 'DROP DEFAULT' : `SET ${defaultClause(col)}`}`);
  }
  const known = new Set(from.columns.map((c) => c.name));
  for (const col of to.columns) {
    if (known.has(col.name)) continue;
    if (col.required) return refuse(`new column "${col.name}" cannot be required: rows already loaded have no value for it`);
    actions.push(`ADD COLUMN ${columnSql(col)}`);
  }
  // Last: a key may name a column added above.
  if (keyAdded) actions.push(`ADD ${keyConstraint(to.key!)}`);
  return { ok: true, statements: actions.length === 0 ? [] : [`ALTER TABLE ${table}\n  ${actions.join(',\n  ')}`] };
}
