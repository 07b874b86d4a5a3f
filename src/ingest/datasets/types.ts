// Declarative description of an uploadable dataset: which table it lands in and what each
// column must look like. The CSV → COPY transform validates every value against these
// definitions so that nothing it forwards can make PostgreSQL abort the COPY.

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
  /** text: the trimmed value must match. Avoid the g / y flags (stateful). */
  pattern?: RegExp;
  /** enum: the allowed values, compared exactly (case-sensitive) after trimming. */
  values?: readonly string[];
}

export interface DatasetDef {
  name: string;
  table: string;
  columns: readonly ColumnDef[];
}
