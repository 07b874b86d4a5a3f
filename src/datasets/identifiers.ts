// Names a tenant gives to datasets and columns become PostgreSQL identifiers. They are checked here
// against a strict rule before anything else sees them, and quoted wherever SQL is built (pg's
// escapeIdentifier), so a name can never be SQL whatever slips through.
import pg from 'pg';

/** Lower-case ASCII letters, digits and `_`, not starting with a digit: never needs case folding. */
const IDENTIFIER = /^[a-z_][a-z0-9_]*$/;

/** PostgreSQL's NAMEDATALEN − 1: a longer name would be truncated silently. */
export const MAX_IDENTIFIER_LENGTH = 63;

/**
 * PostgreSQL's reserved key words and those that cannot name a column or table unquoted
 * (`pg_get_keywords()` categories R and T, PostgreSQL 15–18). Quoting would make them safe, but a
 * name that needs quotes in every query the tenant writes is a trap; test/integration/datasets-*.test.ts
 * checks this list against the server's.
 */
export const RESERVED_WORDS: ReadonlySet<string> = new Set(
  `all analyse analyze and any array as asc asymmetric both case cast check collate column constraint create
  current_catalog current_date current_role current_time current_timestamp current_user default deferrable desc
  distinct do else end except false fetch for foreign from grant group having in initially intersect into lateral
  leading limit localtime localtimestamp not null offset on only or order placing primary references returning
  select session_user some symmetric system_user table then to trailing true union unique user using variadic when where window
  with authorization binary collation concurrently cross current_schema freeze full ilike inner is isnull join left
  like natural notnull outer overlaps right similar tablesample verbose`.split(/\s+/),
);

/** Columns every dataset table has, managed by the service: not available as a column name. */
export const SYSTEM_COLUMNS: ReadonlySet<string> = new Set(['upload_id', 'line_number']);

/** Why `name` cannot be an identifier (a sentence for a 400 answer), or null when it can. */
export function identifierProblem(name: string): string | null {
  if (name.length === 0) return 'is empty';
  if (name.length > MAX_IDENTIFIER_LENGTH) return `is ${name.length} characters long; at most ${MAX_IDENTIFIER_LENGTH} are allowed`;
  if (!IDENTIFIER.test(name)) return 'may hold only lower-case letters a–z, digits and "_", and must not start with a digit';
  if (RESERVED_WORDS.has(name)) return 'is a reserved word of PostgreSQL';
  if (name.startsWith('pg_')) return 'must not start with "pg_" (reserved for PostgreSQL system objects)';
  return null;
}

/** `"name"`, doubled quotes inside: pg's own quoting. */
export function quoteIdentifier(name: string): string {
  return pg.escapeIdentifier(name);
}

/** `'text'` as a SQL string literal: pg's own quoting (E'…' when it holds a backslash). */
export function quoteLiteral(text: string): string {
  return pg.escapeLiteral(text);
}

/** The schema holding a tenant's dataset tables: `t_` + the tenant id's 32 hex digits. */
export function tenantSchema(tenantId: string): string {
  const hex = tenantId.replaceAll('-', '').toLowerCase();
  if (!/^[0-9a-f]{32}$/.test(hex)) throw new Error(`not a tenant id: ${tenantId}`);
  return `t_${hex}`;
}
