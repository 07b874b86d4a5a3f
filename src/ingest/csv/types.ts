// Public types of the CSV → COPY transform.
import type { InputFormat } from './input-format.ts';

export type RejectCode =
  | 'malformed_csv' // quote rules broken (see scan.ts) or a bare CR; counts one failed row per line it covers
  | 'record_too_large' // a record longer than maxRecordBytes; counts one failed row per line it covers
  | 'invalid_utf8'
  | 'nul_byte' // PostgreSQL text cannot hold 0x00
  | 'field_count'
  | 'required'
  | 'invalid_uuid'
  | 'invalid_integer'
  | 'out_of_range'
  | 'invalid_numeric'
  | 'invalid_boolean'
  | 'invalid_date'
  | 'invalid_timestamp'
  | 'invalid_json'
  | 'too_long'
  | 'pattern'
  | 'invalid_enum';

export interface Reject {
  /** Physical 1-based line where the record starts (the header is line 1). */
  line: number;
  /** Physical lines the record covers (1 unless quoted fields hold line breaks). */
  lines: number;
  /** Dataset column name, or the header name for unknown columns; null for record-level codes. */
  column: string | null;
  code: RejectCode;
  message: string;
  /** The original record text (no terminator), capped at 8 KiB; invalid UTF-8 and NUL become U+FFFD
   * so it can be stored in a PostgreSQL text column. */
  raw: string;
}

export interface HeaderInfo {
  /** Dataset column names in the order they are sent: the COPY column list after line_number. */
  columns: string[];
  /** Header names (trimmed, as written) that match no dataset column; their values are dropped. */
  unknownColumns: string[];
  /** Physical line of the header (1 unless blank lines precede it). */
  line: number;
  /** The header record as written (UTF-8, no BOM, no line terminator): errors.csv starts with it. */
  text: string;
}

/**
 * Why a whole file cannot be loaded: its header (`missing_columns`, `empty_file`, `bad_header`), a quoted
 * field never closed before the end of the data (`unterminated_quote`, as PostgreSQL COPY, csv-parse and
 * Papa Parse refuse it), or the line accounting not adding up (`line_accounting`: a bug, never the file's).
 */
export type CsvFileErrorCode =
  | 'missing_columns'
  | 'empty_file'
  | 'bad_header'
  | 'unterminated_quote'
  | 'unsupported_line_endings' // lines end with a lone CR (classic Mac OS): only LF and CRLF are read
  | 'missing_bom' // encoding utf-16 without a byte order mark: the byte order is unknown
  | 'line_accounting';

export class CsvFileError extends Error {
  readonly code: CsvFileErrorCode;
  readonly missing?: string[];
  constructor(code: CsvFileErrorCode, message: string, missing?: string[]) {
    super(message);
    this.name = 'CsvFileError';
    this.code = code;
    if (missing) this.missing = missing;
  }
}

export interface CopyTransformOptions {
  onHeader(h: HeaderInfo): void;
  /** How the file is written (delimiter, quotes, dates, decimals); default RFC 4180's. Its encoding is
   * not read here: a file in another encoding than UTF-8 is decoded before (see decode.ts). */
  format?: InputFormat;
  onReject(r: Reject): void;
  /** Target size of each output Buffer (COPY write). Default 1 MiB. */
  chunkBytes?: number;
  /** Longest accepted record, in bytes. Longer ones are rejected (record_too_large) without being
   * buffered, which bounds memory even when a quote is never closed. Default 16 MiB. */
  maxRecordBytes?: number;
}

/**
 * Counters of one transform. At the end of the input they satisfy the line-accounting invariant,
 * which the transform checks (a mismatch fails the file with `line_accounting`):
 *   lines = headerLines + blankLines + acceptedLines + rejectedLines   (physical lines of the file)
 *   records = rowsAccepted + rowsRejected
 * where a row is a data record, except that a structurally broken record (malformed_csv,
 * record_too_large) counts one rejected row per physical line it covers: nobody can tell how many
 * rows its writer meant, and the error budget must see every line that was not loaded.
 */
export interface CopyTransformStats {
  /** Raw CSV bytes consumed. */
  bytesIn: number;
  /** COPY bytes produced. */
  bytesOut: number;
  /** Data rows seen (see above): excludes the header and blank lines. */
  records: number;
  rowsAccepted: number;
  rowsRejected: number;
  /** Accepted rows that had to be re-assembled instead of passed through as their original bytes. */
  rowsRebuilt: number;
  /** Physical lines consumed (complete records only, until the end of input). */
  lines: number;
  headerLines: number;
  blankLines: number;
  acceptedLines: number;
  rejectedLines: number;
}
