// A dataset definition as a tenant writes it (POST /datasets, `stream-api datasets apply FILE`), its
// normal form (what is stored and versioned), and the DatasetDef the CSV → COPY transform runs on.
// Pure: no I/O. Every problem is a DefinitionError whose message says which field and why.
import { Type, type Static } from '@sinclair/typebox';
import { RE2JS } from 're2js';
import { checkField, compileColumn } from '../ingest/csv/fields.ts';
import { InputFormatBody, InputFormatError, normaliseInputFormat, type InputFormat } from '../ingest/csv/input-format.ts';
import type { ColumnDef, ColumnType, DatasetDef, ValuePattern } from '../ingest/datasets/types.ts';
import { identifierProblem, SYSTEM_COLUMNS, tenantSchema } from './identifiers.ts';

/** Names the service keeps for its built-in datasets. */
export const BUILT_IN_DATASETS: ReadonlySet<string> = new Set(['webhook_events']);
/** PostgreSQL allows 1600 columns a table; two are the service's. */
export const MAX_COLUMNS = 1000;
/** numeric's largest declarable precision. */
export const MAX_NUMERIC_PRECISION = 1000;
/** varchar's largest length. */
export const MAX_TEXT_LENGTH = 10_485_760;

const TYPES = ['text', 'integer', 'bigint', 'numeric', 'boolean', 'uuid', 'date', 'timestamptz', 'jsonb', 'enum'] as const;

export const ColumnBody = Type.Object(
  {
    name: Type.String({ maxLength: 200, description: 'a PostgreSQL identifier: [a-z_][a-z0-9_]*, at most 63 characters, not a reserved word' }),
    type: Type.String({ maxLength: 40, description: `${TYPES.join(' | ')}; numeric may be numeric(p) or numeric(p,s)` }),
    required: Type.Optional(Type.Boolean({ description: 'an empty field rejects the row (unless a default is given); the header must have the column' })),
    default: Type.Optional(Type.String({ minLength: 1, maxLength: 1000, description: 'loaded for an empty field or a column missing from the header' })),
    maxLength: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_TEXT_LENGTH, description: 'text: most characters (varchar(n))' })),
    pattern: Type.Optional(Type.String({ minLength: 1, maxLength: 1000, description: 'text: a regular expression in RE2 syntax (no backreferences or lookaround; matched in linear time) each value must match somewhere (anchor with ^ and $)' })),
    values: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 200 }), { minItems: 1, maxItems: 1000, description: 'enum: the allowed values (case-sensitive)' })),
    aliases: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 200 }), { maxItems: 20, description: 'other header names for this column (case-insensitive)' })),
  },
  { additionalProperties: false },
);

export const DatasetBody = Type.Object(
  {
    name: Type.String({ maxLength: 200, description: 'the table name: [a-z_][a-z0-9_]*, at most 63 characters, not a reserved word' }),
    columns: Type.Array(ColumnBody, { minItems: 1, maxItems: MAX_COLUMNS }),
    key: Type.Optional(Type.Array(Type.String({ maxLength: 200 }), { minItems: 1, maxItems: 32, description: 'unique key columns (stored; used by upserts)' })),
    format: Type.Optional(InputFormatBody),
  },
  { additionalProperties: false },
);
export type DatasetInput = Static<typeof DatasetBody>;

/** A column in normal form: only the attributes that mean something, type spelled canonically. */
export interface ColumnSpec {
  name: string;
  /** text | integer | bigint | numeric | numeric(p) | numeric(p,s) | boolean | uuid | date | timestamptz | jsonb | enum */
  type: string;
  required: boolean;
  default?: string;
  maxLength?: number;
  pattern?: string;
  values?: string[];
  aliases?: string[];
}

/** A definition in normal form: equal definitions are equal JSON (that is what makes `apply` idempotent). */
export interface DatasetSpec {
  name: string;
  columns: ColumnSpec[];
  key?: string[];
  /** How this dataset's files are written, where it differs from RFC 4180's defaults (src/ingest/csv/input-format.ts). */
  format?: Partial<InputFormat>;
}

export class DefinitionError extends Error {
  override name = 'DefinitionError';
}

const NUMERIC_TYPE = /^numeric\s*(?:\(\s*(\d{1,4})\s*(?:,\s*(\d{1,4})\s*)?\))?$/;

/** The base type and numeric's precision/scale of a type as written; throws DefinitionError. */
export function parseType(text: string, where: string): { type: ColumnType; precision?: number; scale?: number; canonical: string } {
  const t = text.trim().toLowerCase();
  const numeric = NUMERIC_TYPE.exec(t);
  if (numeric) {
    if (numeric[1] === undefined) return { type: 'numeric', canonical: 'numeric' };
    const precision = Number(numeric[1]);
    const scale = Number(numeric[2] ?? 0);
    if (precision < 1 || precision > MAX_NUMERIC_PRECISION) throw new DefinitionError(`${where}: numeric precision must be 1–${MAX_NUMERIC_PRECISION}`);
    if (scale > precision) throw new DefinitionError(`${where}: numeric scale must be 0–${precision} (the precision)`);
    return { type: 'numeric', precision, scale, canonical: `numeric(${precision},${scale})` };
  }
  if ((TYPES as readonly string[]).includes(t)) return { type: t as ColumnType, canonical: t };
  throw new DefinitionError(`${where}: unknown type ${JSON.stringify(text.slice(0, 40))}; one of ${TYPES.join(', ')} (numeric may be numeric(p,s))`);
}

function checkIdentifier(name: string, what: string): void {
  const problem = identifierProblem(name);
  if (problem) throw new DefinitionError(`${what} ${JSON.stringify(name.slice(0, 80))} ${problem}`);
}

/**
 * Checks a definition as written and returns its normal form. `pathName` is the name in the URL
 * (PUT /datasets/:name): the body's name, if any, must be the same. Throws DefinitionError.
 */
export function normaliseDefinition(input: DatasetInput, pathName?: string): DatasetSpec {
  const name = input.name;
  if (pathName !== undefined && name !== pathName) throw new DefinitionError(`name ${JSON.stringify(name)} in the body differs from ${JSON.stringify(pathName)} in the URL`);
  checkIdentifier(name, 'dataset name');
  if (BUILT_IN_DATASETS.has(name)) throw new DefinitionError(`dataset name "${name}" is built in and cannot be defined`);
  const headers = new Map<string, string>(); // lower-cased header name → the column it feeds
  const columns = input.columns.map((c, i) => normaliseColumn(c, `columns[${i}]`, headers));
  const names = new Set(columns.map((c) => c.name));
  const spec: DatasetSpec = { name, columns };
  if (input.key) {
    const seen = new Set<string>();
    for (const k of input.key) {
      if (!names.has(k)) throw new DefinitionError(`key: ${JSON.stringify(k.slice(0, 80))} is not a column of the dataset`);
      if (seen.has(k)) throw new DefinitionError(`key: "${k}" is listed twice`);
      seen.add(k);
    }
    spec.key = [...input.key];
  }
  if (input.format) {
    try {
      const format = normaliseInputFormat(input.format);
      if (Object.keys(format).length > 0) spec.format = format;
    } catch (err) {
      if (err instanceof InputFormatError) throw new DefinitionError(err.message);
      throw err;
    }
  }
  return spec;
}

function normaliseColumn(c: Static<typeof ColumnBody>, where: string, headers: Map<string, string>): ColumnSpec {
  checkIdentifier(c.name, `${where}: column name`);
  if (SYSTEM_COLUMNS.has(c.name)) throw new DefinitionError(`${where}: column name "${c.name}" is kept by the service (every table has upload_id and line_number)`);
  where = `column "${c.name}"`;
  const { type, canonical, precision, scale } = parseType(c.type, where);
  const spec: ColumnSpec = { name: c.name, type: canonical, required: c.required ?? false };
  for (const header of [c.name, ...(c.aliases ?? [])]) {
    const key = header.trim().toLowerCase();
    if (key === '') throw new DefinitionError(`${where}: an alias is blank`);
    const other = headers.get(key);
    if (other !== undefined) throw new DefinitionError(`${where}: header name "${header.trim()}" already names column "${other}"`);
    headers.set(key, c.name);
  }
  if (c.aliases?.length) spec.aliases = c.aliases.map((a) => a.trim());
  if (c.maxLength !== undefined) {
    if (type !== 'text') throw new DefinitionError(`${where}: maxLength applies to text columns only`);
    spec.maxLength = c.maxLength;
  }
  if (c.pattern !== undefined) {
    if (type !== 'text') throw new DefinitionError(`${where}: pattern applies to text columns only`);
    try {
      compileTenantPattern(c.pattern);
    } catch (err) {
      throw new DefinitionError(`${where}: pattern is not a valid regular expression in RE2 syntax (${(err as Error).message})`);
    }
    spec.pattern = c.pattern;
  }
  if (type === 'enum') {
    if (!c.values) throw new DefinitionError(`${where}: an enum column needs values`);
    const values = c.values.map((v) => v.trim());
    if (values.some((v) => v === '')) throw new DefinitionError(`${where}: an enum value is blank`);
    if (new Set(values).size !== values.length) throw new DefinitionError(`${where}: enum values repeat`);
    spec.values = values;
  } else if (c.values !== undefined) {
    throw new DefinitionError(`${where}: values apply to enum columns only`);
  }
  if (c.default !== undefined) {
    const value = c.default.trim();
    const problem = value === '' ? 'blank' : checkValue(toColumnDef(spec, type, precision, scale), value);
    if (problem) throw new DefinitionError(`${where}: default ${JSON.stringify(value.slice(0, 80))} is not valid for the column (${problem})`);
    spec.default = value;
  }
  return spec;
}

/**
 * A tenant's `pattern`, compiled with RE2JS (RE2 syntax: no backreferences, no lookaround). RE2 matches in
 * time linear in the value's length: a JavaScript RegExp backtracks, and one pattern such as `(a+)+$`
 * against a 30-character value would stall the loader's event loop (and, in role `all`, the API) for
 * seconds. Throws RE2JS's syntax error for a pattern RE2 does not accept.
 */
export function compileTenantPattern(source: string): ValuePattern {
  const re = RE2JS.compile(source);
  return { source, test: (value) => re.test(value) };
}

/** The reject code a (trimmed, non-empty) value would get in this column, or null. */
export function checkValue(def: ColumnDef, value: string): string | null {
  const b = Buffer.from(value);
  return checkField(b, 0, b.length, 0, compileColumn(def));
}

function toColumnDef(spec: ColumnSpec, type: ColumnType, precision?: number, scale?: number): ColumnDef {
  const def: ColumnDef = { name: spec.name, type, required: spec.required };
  if (precision !== undefined) Object.assign(def, { precision, scale });
  if (spec.maxLength !== undefined) def.maxLength = spec.maxLength;
  if (spec.pattern !== undefined) def.pattern = compileTenantPattern(spec.pattern);
  if (spec.values) def.values = spec.values;
  if (spec.aliases) def.aliases = spec.aliases;
  if (spec.default !== undefined) def.default = spec.default;
  return def;
}

/** The DatasetDef the loader runs on, for a tenant's stored definition. */
export function compileDefinition(spec: DatasetSpec, tenantId: string, version: number): DatasetDef {
  return {
    name: spec.name,
    schema: tenantSchema(tenantId),
    table: spec.name,
    version,
    ...(spec.key ? { key: spec.key } : {}),
    ...(spec.format ? { format: spec.format } : {}),
    columns: spec.columns.map((c) => {
      const { type, precision, scale } = parseType(c.type, c.name);
      return toColumnDef(c, type, precision, scale);
    }),
  };
}

/** JSON with object keys sorted: jsonb keeps its own key order, so stored and new forms compare by this. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v,
  );
}
