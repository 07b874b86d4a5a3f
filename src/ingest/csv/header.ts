// Header record → which dataset column each CSV position feeds (or none).

import type { DatasetDef } from '../datasets/types.ts';
import { type CompiledColumn, compileColumn, CONVERT_NONE, decodeValue } from './fields.ts';
import { DEFAULT_INPUT_FORMAT, type InputFormat } from './input-format.ts';
import { MALFORMED_NONE, type RecordScanner } from './scan.ts';
import { CsvFileError, type HeaderInfo } from './types.ts';

export interface HeaderPlan {
  info: HeaderInfo;
  /** Per CSV position: the dataset column it feeds, or null for an unknown (dropped) column. */
  columns: (CompiledColumn | null)[];
  /** Per CSV position: the header name as written (trimmed). */
  names: string[];
  /** Every record is re-assembled: there are unknown columns to drop, or values in the file's own spelling
   * (dates, decimal commas) to rewrite. */
  rebuildAll: boolean;
  /** Bytes of every default together: the most an empty-field fill can add to a record. */
  defaultBytes: number;
}

/**
 * Matches the parsed header record (in `scanner`) to the dataset: names trimmed and compared
 * case-insensitively. The caller has already stripped a UTF-8 BOM and checked the bytes. `format`: how
 * the file writes its values (the columns' checks and conversions follow it).
 */
export function planHeader(dataset: DatasetDef, buf: Buffer, start: number, scanner: RecordScanner, line: number, format: InputFormat = DEFAULT_INPUT_FORMAT): HeaderPlan {
  if (scanner.malformed !== MALFORMED_NONE) {
    throw new CsvFileError('bad_header', `header (line ${line}) is not valid CSV: misplaced quote or bare carriage return`);
  }
  const byName = headerNames(dataset);
  const seen = new Set<string>();
  const fed = new Map<string, string>(); // dataset column → the header name that feeds it
  const columns: (CompiledColumn | null)[] = [];
  const names: string[] = [];
  const info: HeaderInfo = { columns: [], unknownColumns: [], line, text: buf.toString('utf8', start, scanner.contentEnd) };
  const f = scanner.fields;
  for (let i = 0; i < scanner.fieldCount; i++) {
    const name = decodeValue(buf, f[3 * i]!, f[3 * i + 1]!, f[3 * i + 2]!).trim();
    const key = name.toLowerCase();
    names.push(name);
    if (key !== '') {
      if (seen.has(key)) throw new CsvFileError('bad_header', `duplicate column in header: ${name}`);
      seen.add(key);
    }
    const def = byName.get(key);
    if (def) {
      const earlier = fed.get(def.name);
      if (earlier !== undefined) throw new CsvFileError('bad_header', `columns "${earlier}" and "${name}" both name dataset column ${def.name}`);
      fed.set(def.name, name);
      columns.push(compileColumn(def, format));
      info.columns.push(def.name);
    } else {
      columns.push(null);
      info.unknownColumns.push(name);
    }
  }
  // A required column with a default may be absent: the table's DEFAULT fills it.
  const missing = dataset.columns.filter((c) => c.required && c.default === undefined && !fed.has(c.name)).map((c) => c.name);
  if (missing.length > 0) {
    throw new CsvFileError('missing_columns', `missing required column(s): ${missing.join(', ')}`, missing);
  }
  const defaultBytes = columns.reduce((n, c) => n + (c?.defaultCsv?.length ?? 0), 0);
  const rebuildAll = info.unknownColumns.length > 0 || columns.some((c) => c !== null && c.convert !== CONVERT_NONE);
  return { info, columns, names, rebuildAll, defaultBytes };
}

/** Lower-cased header name (the column's name or an alias) → the column it feeds. */
function headerNames(dataset: DatasetDef): Map<string, DatasetDef['columns'][number]> {
  const byName = new Map<string, DatasetDef['columns'][number]>();
  for (const c of dataset.columns) {
    byName.set(c.name.toLowerCase(), c);
    for (const alias of c.aliases ?? []) byName.set(alias.trim().toLowerCase(), c);
  }
  return byName;
}
