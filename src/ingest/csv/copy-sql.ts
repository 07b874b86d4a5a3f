// The COPY statement matching the transform's output: line_number first, then the header's
// dataset columns. upload_id is not sent: the table takes it from `app.upload_id`.

import type { DatasetDef } from '../datasets/types.ts';
import type { HeaderInfo } from './types.ts';

export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

export function copyStatement(dataset: DatasetDef, header: Pick<HeaderInfo, 'columns'>): string {
  const columns = ['line_number', ...header.columns].map(quoteIdent).join(', ');
  return `COPY ${quoteIdent(dataset.table)} (${columns}) FROM STDIN (FORMAT csv)`;
}
