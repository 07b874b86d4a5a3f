// The COPY statement matching the transform's output: line_number first, then the header's
// dataset columns. upload_id is not sent: the table takes it from `app.upload_id`. A tenant's dataset
// table is qualified by its schema.

import type { DatasetDef } from '../datasets/types.ts';
import type { Delimiter } from './input-format.ts';
import type { HeaderInfo } from './types.ts';

export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** The COPY for `header`'s columns; `delimiter` is the file's (one of DELIMITERS), which the output keeps. */
export function copyStatement(dataset: DatasetDef, header: Pick<HeaderInfo, 'columns'>, delimiter: Delimiter = ','): string {
  const columns = ['line_number', ...header.columns].map(quoteIdent).join(', ');
  const table = dataset.schema === undefined ? quoteIdent(dataset.table) : `${quoteIdent(dataset.schema)}.${quoteIdent(dataset.table)}`;
  // DELIMITERS besides the comma are ; TAB |: none is a quote or backslash; TAB is written E'\t'.
  const options = delimiter === ',' ? '' : `, DELIMITER E'${delimiter === '\t' ? '\\t' : delimiter}'`;
  return `COPY ${table} (${columns}) FROM STDIN (FORMAT csv${options})`;
}
