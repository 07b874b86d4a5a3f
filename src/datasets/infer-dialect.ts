// The first step of inferring a dataset from a sample (src/datasets/infer.ts): how the sample is written.
// Its encoding (a byte order mark → UTF-8 or UTF-16; valid UTF-8 → UTF-8; anything else → Windows-1252,
// decoded with iconv-lite), its delimiter among `,` `;` tab `|` (the one that splits the lines into the most
// consistent number of columns, quotes respected — parsed with csv-parse), and its quote handling (strict
// RFC 4180 when the sample parses so, else relaxed), as DuckDB's sniff_csv does.
// Pure: no I/O. Problems are InferError with a stable code of the error table.
import { parse } from 'csv-parse/sync';
import iconv from 'iconv-lite';
import { DELIMITERS, type Delimiter, type Encoding, type QuoteMode } from '../ingest/csv/input-format.ts';

/** Codes of the error table (src/errors.ts) a sample can be refused with. */
export type InferErrorCode = 'sample_empty' | 'sample_no_header' | 'unsupported_media_type' | 'invalid_dataset';

export class InferError extends Error {
  override name = 'InferError';
  constructor(
    readonly code: InferErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** The sample as text, and how it was written. */
export interface DecodedSample {
  text: string;
  encoding: Encoding;
  /** the sample began with a byte order mark (removed from `text`) */
  bom: boolean;
  /** a partial last line was dropped (the sample is the start of a longer file) */
  cutLine: boolean;
}

const BINARY_SIGNATURES: readonly (readonly number[])[] = [
  [0x1f, 0x8b], // gzip (decompressed before this module sees it)
  [0x89, 0x50, 0x4e, 0x47], // PNG
  [0xff, 0xd8, 0xff], // JPEG
  [0x47, 0x49, 0x46, 0x38], // GIF
  [0x25, 0x50, 0x44, 0x46], // PDF
  [0x50, 0x4b, 0x03, 0x04], // ZIP / XLSX
  [0xd0, 0xcf, 0x11, 0xe0], // legacy Office (XLS)
];

/** C0 control characters other than tab, LF and CR beyond this share of the text: not CSV text. */
const MAX_CONTROL_SHARE = 0.01;

/**
 * Decodes `sample`, the first bytes of a file (`complete`: the whole file). A sample cut short loses its
 * last, partial line (and with it any character cut in the middle). Throws InferError: `sample_empty` (no
 * byte, or no complete line), `unsupported_media_type` (a binary format, NUL bytes, control characters).
 */
export function decodeSample(sample: Buffer, complete: boolean): DecodedSample {
  if (sample.length === 0) throw new InferError('sample_empty', 'the sample is empty');
  const starts = (...bytes: number[]) => sample.length >= bytes.length && bytes.every((b, i) => sample[i] === b);
  let decoded: DecodedSample;
  if (starts(0xff, 0xfe) || starts(0xfe, 0xff)) {
    // UTF-16: the cut may fall inside a code unit; a line is cut on the decoded text.
    const body = sample.subarray(2, sample.length - (sample.length % 2));
    const text = iconv.decode(body, starts(0xff, 0xfe) ? 'utf-16le' : 'utf-16be', { stripBOM: false });
    decoded = { ...cutLastLine(text, complete), encoding: 'utf-16', bom: true };
  } else {
    const bom = starts(0xef, 0xbb, 0xbf);
    let bytes = bom ? sample.subarray(3) : sample;
    const signature = BINARY_SIGNATURES.find((sig) => sig.every((b, i) => bytes[i] === b));
    if (signature) throw new InferError('unsupported_media_type', 'the sample looks like a binary format (an archive, an image, a PDF or a spreadsheet), not CSV text');
    if (bytes.includes(0)) throw new InferError('unsupported_media_type', 'the sample holds NUL bytes: it is binary data or UTF-16 without a byte order mark');
    // LF is one byte (0x0A) in UTF-8 and Windows-1252 alike: cut there, so no character is cut.
    let cutLine = false;
    if (!complete) {
      const lastLf = bytes.lastIndexOf(0x0a);
      cutLine = lastLf < bytes.length - 1;
      bytes = bytes.subarray(0, lastLf + 1);
    }
    const utf8 = bom || isUtf8(bytes);
    decoded = { text: utf8 ? bytes.toString('utf8') : iconv.decode(bytes, 'windows-1252'), encoding: utf8 ? 'utf-8' : 'windows-1252', bom, cutLine };
  }
  const text = decoded.text;
  if (text.trim() === '') {
    throw new InferError('sample_empty', complete ? 'the sample holds no CSV: only blank lines' : 'the sample holds no complete line: its first line is longer than the sample');
  }
  let controls = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) controls++;
  }
  if (controls > text.length * MAX_CONTROL_SHARE) throw new InferError('unsupported_media_type', 'the sample is mostly control characters: binary data, not CSV text');
  return decoded;
}

function isUtf8(bytes: Buffer): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return true;
  } catch {
    return false;
  }
}

function cutLastLine(text: string, complete: boolean): { text: string; cutLine: boolean } {
  if (complete) return { text, cutLine: false };
  const end = text.lastIndexOf('\n') + 1;
  return { text: text.slice(0, end), cutLine: end < text.length };
}

/** How the records are delimited and quoted. */
export interface Dialect {
  delimiter: Delimiter;
  quotes: QuoteMode;
}

/** The records of a text, and how its parse ended. */
export interface Parsed {
  records: string[][];
  /** csv-parse's error code when the parse stopped before the end of the text (the records are those before it) */
  stoppedBy: string | null;
}

/**
 * Parses `text` with csv-parse (RFC 4180; `relaxed`: a quote inside an unquoted field is a literal), blank
 * lines skipped, every record kept whatever its width. At most `maxRecords`; a parse error keeps the
 * records before it (a sample cut inside a quoted field ends so).
 */
export function parseRecords(text: string, dialect: Dialect, maxRecords: number): Parsed {
  const records: string[][] = [];
  try {
    parse(text, {
      delimiter: dialect.delimiter,
      relax_quotes: dialect.quotes === 'relaxed',
      relax_column_count: true,
      skip_empty_lines: true,
      to: maxRecords,
      on_record: (record: string[]) => {
        records.push(record);
        return null;
      },
    });
    return { records, stoppedBy: null };
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (typeof code !== 'string') throw err;
    return { records, stoppedBy: code };
  }
}

/** Lines the delimiter is judged on (DuckDB samples 20,480 rows; a few hundred decide the dialect). */
const SNIFF_RECORDS = 500;

/** A quote error csv-parse stops at in strict mode, which relaxed quoting reads as literal quotes. */
const QUOTE_ERRORS = new Set(['INVALID_OPENING_QUOTE', 'CSV_INVALID_CLOSING_QUOTE']);

/**
 * Parses `text` strictly, or relaxed when strict parsing stops at a misplaced quote (`5'10"` unquoted):
 * the quote mode a loader needs for it, and the records (at most `maxRecords`).
 */
export function readRecords(text: string, delimiter: Delimiter, maxRecords: number): Parsed & { quotes: QuoteMode } {
  const strict = parseRecords(text, { delimiter, quotes: 'strict' }, maxRecords);
  if (strict.stoppedBy === null || !QUOTE_ERRORS.has(strict.stoppedBy)) return { ...strict, quotes: 'strict' };
  return { ...parseRecords(text, { delimiter, quotes: 'relaxed' }, maxRecords), quotes: 'relaxed' };
}

/**
 * The delimiter of `text`: the candidate that splits the most of its first records into as many fields as
 * the header has, then the one with the widest header. A text no candidate splits into two columns is one
 * column: comma, RFC 4180's.
 */
export function sniffDelimiter(text: string): Delimiter {
  let best: { delimiter: Delimiter; consistent: number; width: number } | null = null;
  for (const delimiter of DELIMITERS) {
    const { records } = readRecords(text, delimiter, SNIFF_RECORDS);
    const width = records[0]?.length ?? 0;
    if (width < 2) continue;
    const consistent = records.filter((r) => r.length === width).length;
    if (!best || consistent > best.consistent || (consistent === best.consistent && width > best.width)) best = { delimiter, consistent, width };
  }
  return best?.delimiter ?? ',';
}
