// Declarative description of an uploadable dataset: which table it lands in and what each
// column must look like. The CSV → COPY transform validates every value against these
// definitions so that nothing it forwards can make PostgreSQL abort the COPY.
import type { InputFormat } from '../csv/input-format.ts';

export type ColumnType =
  | 'text'
  | 'integer' // int4
  | 'bigint' // int8
  | 'numeric'
  | 'boolean'
  | 'uuid'
  | 'date'
  | 'timestamptz'
  | 'jsonb'
  | 'enum';

export interface ColumnDef {
  /** Column name in the table; CSV headers are matched to it trimmed and case-insensitively. */
  name: string;
  type: ColumnType;
  /** An empty (after trimming) value rejects the row instead of becoming NULL. */
  required?: boolean;
  /** text / enum: maximum length in characters (Unicode code points, as PostgreSQL counts). */
  maxLength?: number;
  /** text: the trimmed value must match (found anywhere in it, as RegExp.test; anchor with ^ and $). */
  pattern?: ValuePattern;
  /** enum: the allowed values, compared exactly (case-sensitive) after trimming. */
  values?: readonly string[];
  /** numeric(p,s): total significant digits p and digits after the point s (PostgreSQL rounds to s
   * and refuses a value whose rounded integer part has more than p − s digits). */
  precision?: number;
  scale?: number;
  /** Other header names that feed this column, matched like the name (trimmed, case-insensitively). */
  aliases?: readonly string[];
  /** Loaded for an empty field (and by the table's DEFAULT when the header lacks the column); it
   * passes this column's checks. A required column with a default never rejects an empty field. */
  default?: string;
}

export interface DatasetDef {
  name: string;
  /** PostgreSQL schema of the table; none: the search_path (the built-in webhook_events). */
  schema?: string;
  table: string;
  /** Definition version of a tenant's dataset (src/datasets/); none for a built-in one. */
  version?: number;
  /** A tenant's dataset's unique key (its columns): what mode=upsert matches rows by. */
  key?: readonly string[];
  /** A tenant's dataset's default input format (delimiter, encoding, …) where it differs from RFC 4180's. */
  format?: Partial<InputFormat>;
  columns: readonly ColumnDef[];
}

/**
 * A pattern a text value must match. A built-in dataset's may be a RegExp literal (written here, trusted,
 * without the stateful g / y flags); a tenant's is compiled by compileTenantPattern (RE2 syntax, linear time).
 */
export interface ValuePattern {
  /** whether the pattern matches somewhere in `value` */
  test(value: string): boolean;
  /** the pattern as written */
  readonly source: string;
}
