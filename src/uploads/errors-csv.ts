// errors.csv: the rejected records under the header the loader used, plus `_line` and `_error`, so a
// user can fix them and upload the file again. It must stay valid CSV (RFC 4180) whatever was rejected:
// a structurally broken record (malformed_csv, record_too_large) may hold an open quote that would
// swallow the columns after it, so its text goes into the first column as one quoted field, padded
// to the header's width so `_line` and `_error` stay the last two columns. It is written with the
// upload's delimiter (so the records stay as they were) and in UTF-8, whatever the file's encoding.
import type { Delimiter } from '../ingest/csv/input-format.ts';
import { RecordScanner } from '../ingest/csv/scan.ts';

const BROKEN = new Set(['malformed_csv', 'record_too_large']);

/** Quotes a value for CSV when it needs it (RFC 4180: the delimiter, a quote, CR or LF inside). */
export function csvField(value: string, delimiter: Delimiter = ','): string {
  return value.includes(delimiter) || /["\r\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}

/** The first line of errors.csv and the number of fields of the original header (0 if unknown). */
export function errorsCsvHeader(csvHeader: string | null, delimiter: Delimiter = ','): { line: string; fields: number } {
  if (csvHeader === null) return { line: `_line${delimiter}_error\n`, fields: 0 };
  const bytes = Buffer.from(csvHeader);
  const scanner = new RecordScanner(delimiter.charCodeAt(0));
  scanner.parse(bytes, 0, bytes.length, true);
  return { line: `${csvHeader}${delimiter}_line${delimiter}_error\n`, fields: scanner.fieldCount };
}

/** One rejected record as a line of errors.csv (`headerFields` from errorsCsvHeader, `delimiter` the file's). */
export function errorsCsvLine(row: { raw: string; line: number; code: string; message: string }, headerFields: number, delimiter: Delimiter = ','): string {
  const error = csvField(`${row.code}: ${row.message}`, delimiter);
  if (!BROKEN.has(row.code)) return `${row.raw}${delimiter}${row.line}${delimiter}${error}\n`;
  const padding = delimiter.repeat(Math.max(0, headerFields - 1));
  return `${csvField(row.raw, delimiter)}${padding}${delimiter}${row.line}${delimiter}${error}\n`;
}
