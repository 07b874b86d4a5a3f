// Public types of the CSV → COPY transform.

export type RejectCode =
  | 'malformed_csv' // quote rules broken, bare CR, or a quote left open at end of file
  | 'record_too_large' // a record longer than maxRecordBytes (usually a quote never closed)
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
}

export type HeaderErrorCode = 'missing_columns' | 'empty_file' | 'bad_header';

export class HeaderError extends Error {
  readonly code: HeaderErrorCode;
  readonly missing?: string[];
  constructor(code: HeaderErrorCode, message: string, missing?: string[]) {
    super(message);
    this.name = 'HeaderError';
    this.code = code;
    if (missing) this.missing = missing;
  }
}

export interface CopyTransformOptions {
  onHeader(h: HeaderInfo): void;
  onReject(r: Reject): void;
  /** Target size of each output Buffer (COPY write). Default 1 MiB. */
  chunkBytes?: number;
  /** Longest accepted record, in bytes. Longer ones are rejected (record_too_large) without being
   * buffered, which bounds memory even when a quote is never closed. Default 16 MiB. */
  maxRecordBytes?: number;
}

export interface CopyTransformStats {
  /** Raw CSV bytes consumed. */
  bytesIn: number;
  /** COPY bytes produced. */
  bytesOut: number;
  /** Data records seen: excludes the header and blank lines. records = rowsAccepted + rowsRejected. */
  records: number;
  rowsAccepted: number;
  rowsRejected: number;
  /** Accepted rows that had to be re-assembled instead of passed through as their original bytes. */
  rowsRebuilt: number;
  /** Physical lines consumed (complete lines only, until the end of input). */
  lines: number;
}
