// The COPY statement matching the transform's output: line_number first, then the header's
// dataset columns. upload_id is not sent: the table takes it from `app.upload_id`. A tenant's dataset
// table is qualified by its schema.

import type { DatasetDef } from '../datasets/types.ts';
import type { HeaderInfo } from './types.ts';

export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

export function copyStatement(dataset: DatasetDef, header: Pick<HeaderInfo, 'columns'>): string {
  const columns = ['line_number', ...header.columns].map(quoteIdent).join(', ');
  const table = dataset.schema === undefined ? quoteIdent(dataset.table) : `${quoteIdent(dataset.schema)}.${quoteIdent(dataset.table)}`;
  return `COPY ${table} (${columns}) FROM STDIN (FORMAT csv)`;
}
