// Raw CSV bytes in, PostgreSQL `COPY … (FORMAT csv)` bytes out: one line per valid record,
// `<line_number><delimiter><fields>\n`, in the file's own delimiter (copyStatement names it). Invalid
// records go to onReject and are not sent. The bytes are UTF-8: another encoding is decoded before
// this transform (decode.ts).
//
// Why it looks like this (see PERFORMANCE.md): the cost that matters is JS work per row. A
// valid record whose bytes are already canonical is copied to the output as its ORIGINAL bytes
// behind its line number; only records that must change (trimmed values, dropped unknown
// columns) are re-assembled, and even that is byte copies. Anything forwarded has been checked
// to be acceptable to PostgreSQL, because one bad value aborts the whole COPY.

import { isUtf8 } from 'node:buffer';
import { Transform, type TransformCallback } from 'node:stream';
import type { DatasetDef } from '../datasets/types.ts';
import { type DateLayout, isoDate, pointDecimal } from './convert.ts';
import { checkField, type CompiledColumn, CONVERT_DECIMAL, CONVERT_NONE, CONVERT_TIMESTAMP, decodeValue, describeReject, spellingHint } from './fields.ts';
import { DEFAULT_INPUT_FORMAT } from './input-format.ts';
import { type HeaderPlan, planHeader } from './header.ts';
import { ACCEPTED, BLANK, BROKEN, bookRecord, checkAccounting, HEADER, LineLedger, REJECTED } from './accounting.ts';
import { ChunkWriter } from './output.ts';
import { RAW_CAP, SpanningRecord } from './spanning.ts';
import {
  F_LITERAL,
  F_QUOTED,
  LF,
  MALFORMED_BARE_CR,
  MALFORMED_INVALID_CLOSING_QUOTE,
  MALFORMED_NONE,
  MALFORMED_QUOTE_IN_FIELD,
  QUOTE,
  RecordScanner,
} from './scan.ts';
import {
  type CopyTransformOptions,
  type CopyTransformStats,
  CsvFileError,
  type HeaderInfo,
  type RejectCode,
} from './types.ts';

const DEFAULT_CHUNK_BYTES = 1 << 20;
const DEFAULT_MAX_RECORD_BYTES = 16 << 20;
/** Line number digits + ',' + '\n' around a record, with room to spare. */
const LINE_OVERHEAD = 24;

const MALFORMED_MESSAGES: Record<number, string> = {
  [MALFORMED_QUOTE_IN_FIELD]: 'quote inside an unquoted field',
  [MALFORMED_INVALID_CLOSING_QUOTE]: 'quote inside a quoted field that is neither doubled nor followed by the delimiter or line end',
  [MALFORMED_BARE_CR]: 'carriage return outside quotes that does not end the line',
};


export class CopyTransform extends Transform {
  readonly stats: CopyTransformStats = {
    bytesIn: 0, bytesOut: 0, records: 0, rowsAccepted: 0, rowsRejected: 0, rowsRebuilt: 0, lines: 0,
    headerLines: 0, blankLines: 0, acceptedLines: 0, rejectedLines: 0,
  };
  /** Set once the header record has been read (before any output). */
  header: HeaderInfo | null = null;

  private readonly dataset: DatasetDef;
  private readonly opts: CopyTransformOptions;
  private readonly maxRecordBytes: number;
  private readonly scanner: RecordScanner;
  /** The file's delimiter byte, which the output keeps. */
  private readonly delimiter: number;
  private readonly out: ChunkWriter;
  private plan: HeaderPlan | null = null;
  /** Physical line where the next record starts. */
  private line = 1;
  /** First bytes held until we know whether they start with a UTF-8 BOM; null once decided. */
  private head: Buffer | null = Buffer.alloc(0);
  private readonly spanning: SpanningRecord;
  private readonly ledger = new LineLedger();

  constructor(dataset: DatasetDef, opts: CopyTransformOptions) {
    const chunkBytes = opts.chunkBytes ?? DEFAULT_CHUNK_BYTES;
    super({ readableHighWaterMark: chunkBytes });
    this.dataset = dataset;
    this.opts = opts;
    this.maxRecordBytes = opts.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES;
    const format = opts.format ?? DEFAULT_INPUT_FORMAT;
    this.delimiter = format.delimiter.charCodeAt(0);
    const relaxed = format.quotes === 'relaxed';
    this.scanner = new RecordScanner(this.delimiter, relaxed);
    this.spanning = new SpanningRecord(this.maxRecordBytes, this.delimiter, relaxed);
    this.out = new ChunkWriter(chunkBytes, (b) => this.push(b));
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    try {
      this.stats.bytesIn += chunk.length;
      const body = this.stripBom(chunk);
      if (body !== null) {
        this.ledger.observe(body);
        this.consume(body);
      }
      this.stats.lines = this.line - 1;
      this.stats.bytesOut = this.out.bytesOut;
      callback();
    } catch (err) {
      callback(err as Error);
    }
  }

  override _flush(callback: TransformCallback): void {
    try {
      if (this.head !== null && this.head.length > 0) {
        this.ledger.observe(this.head);
        this.consume(this.head); // 1–2 bytes, not a BOM
      }
      this.head = null;
      if (this.spanning.active) this.finishSpanning(null);
      this.stats.lines = this.line - 1;
      if (this.plan === null) throw new CsvFileError('empty_file', 'the file is empty: no header record');
      checkAccounting(this.stats, this.ledger.lines);
      this.out.flush(true);
      this.stats.bytesOut = this.out.bytesOut;
      callback();
    } catch (err) {
      callback(err as Error);
    }
  }

  /** Returns the bytes to parse, without a leading BOM; null while the first 3 bytes are unknown. */
  private stripBom(chunk: Buffer): Buffer | null {
    if (this.head === null) return chunk;
    const b = this.head.length > 0 ? Buffer.concat([this.head, chunk]) : chunk;
    const isBomPrefix = (b[0] === 0xef || b.length === 0) && (b.length < 2 || b[1] === 0xbb) && (b.length < 3 || b[2] === 0xbf);
    if (b.length < 3 && isBomPrefix) {
      this.head = b;
      return null;
    }
    this.head = null;
    if ((b[0] === 0xff && b[1] === 0xfe) || (b[0] === 0xfe && b[1] === 0xff)) {
      throw new CsvFileError('bad_header', 'the file starts with a UTF-16 byte order mark: upload it with encoding utf-16; no row was loaded');
    }
    return isBomPrefix ? b.subarray(3) : b;
  }

  private consume(chunk: Buffer): void {
    if (chunk.length === 0) return;
    let pos = 0;
    if (this.spanning.active) {
      const end = this.spanning.continueWith(chunk);
      if (end < 0) return;
      this.finishSpanning(chunk.subarray(0, end + 1));
      pos = end + 1;
    }
    // Every complete record in this chunk ends at or before the last LF, so one native UTF-8
    // check and one NUL search over that span usually spare any per-record check.
    const lastLF = chunk.lastIndexOf(LF);
    if (lastLF >= pos) {
      const utf8Ok = isUtf8(chunk.subarray(pos, lastLF + 1));
      let nulAt = chunk.indexOf(0, pos);
      const sc = this.scanner;
      while (pos <= lastLF) {
        const next = sc.parse(chunk, pos, chunk.length, false);
        if (next < 0) break;
        if (next - pos > this.maxRecordBytes) {
          // Same verdict as when the record spans chunks: the result must not depend on chunking.
          this.tooLarge(chunk.subarray(pos, pos + RAW_CAP), sc.newlines + 1);
        } else {
          if (nulAt >= 0 && nulAt < pos) nulAt = chunk.indexOf(0, pos);
          this.onRecord(chunk, pos, utf8Ok, nulAt >= 0 && nulAt < sc.contentEnd);
        }
        pos = next;
      }
    }
    if (pos < chunk.length) this.spanning.start(chunk.subarray(pos));
  }

  /** Completes the record that spans chunks with `last` (null at end of input). */
  private finishSpanning(last: Buffer | null): void {
    const sc = this.scanner;
    const taken = this.spanning.take(last);
    if (taken.kind === 'too_large') {
      if (taken.unterminated) this.unterminated(taken.openQuoteNewlines);
      this.tooLarge(taken.prefix, taken.newlines + 1);
      return;
    }
    const record = taken.record;
    const total = record.length;
    if (sc.parse(record, 0, total, last === null) !== total) throw new Error('csv scanner and record finder disagree');
    const nulAt = record.indexOf(0);
    this.onRecord(record, 0, false, nulAt >= 0 && nulAt < sc.contentEnd);
  }

  /** The data ended inside a quoted field: nothing of the file may load (COPY, csv-parse, Papa Parse agree). */
  private unterminated(openQuoteNewlines: number): never {
    this.refuseCrLineEndings();
    const opened = this.line + openQuoteNewlines;
    throw new CsvFileError(
      'unterminated_quote',
      `unterminated quoted field: the quote opened on line ${opened} is never closed (the file ends inside it); no row was loaded`,
    );
  }

  /** Rejects a record longer than maxRecordBytes, of which only `prefix` was kept. */
  private tooLarge(prefix: Buffer, lines: number): void {
    const message = `record is larger than ${this.maxRecordBytes} bytes (a quote never closed?)`;
    if (this.plan === null) {
      this.refuseCrLineEndings();
      throw new CsvFileError('bad_header', `header ${message}`);
    }
    this.emitReject(null, 'record_too_large', message, prefix, 0, prefix.length, lines);
  }

  /** Books the record just handled (`lines` physical lines) and moves to the next one. */
  private book(kind: number, lines: number): void {
    bookRecord(this.stats, kind, lines);
    this.line += lines;
  }

  /** Handles the record just parsed by `scanner` at buf[start…]. */
  private onRecord(buf: Buffer, start: number, utf8Known: boolean, hasNul: boolean): void {
    const sc = this.scanner;
    if (sc.unterminated) this.unterminated(sc.openQuoteNewlines);
    const lines = sc.newlines + 1;
    if (sc.isBlank()) return this.book(BLANK, lines);
    const end = sc.contentEnd;
    const utf8Ok = utf8Known || isUtf8(buf.subarray(start, end));
    const plan = this.plan;
    if (plan === null) {
      this.onHeaderRecord(buf, start, utf8Ok, hasNul);
      return this.book(HEADER, lines);
    }
    if (sc.malformed !== MALFORMED_NONE) {
      const span = lines > 1 ? ` (the record spans lines ${this.line}–${this.line + lines - 1})` : '';
      return this.reject(buf, start, sc.malformedField, 'malformed_csv', `malformed CSV: ${MALFORMED_MESSAGES[sc.malformed]}${span}`);
    }
    if (!utf8Ok) return this.reject(buf, start, this.fieldWhere((s, e) => !isUtf8(buf.subarray(s, e))), 'invalid_utf8', 'not valid UTF-8');
    if (hasNul) return this.reject(buf, start, this.fieldWhere((s, e) => buf.subarray(s, e).includes(0)), 'nul_byte', 'contains a NUL (0x00) byte');
    const columns = plan.columns;
    const n = columns.length;
    if (sc.fieldCount !== n) {
      return this.reject(buf, start, -1, 'field_count', `expected ${n} fields, found ${sc.fieldCount}`);
    }
    const f = sc.fields;
    let fill = false; // an empty field takes its column's default: the record must be rebuilt
    for (let j = 0; j < n; j++) {
      const col = columns[j];
      if (col == null) continue;
      const s = f[3 * j]!;
      const e = f[3 * j + 1]!;
      if (s === e) {
        if (col.defaultCsv !== null) fill = true;
        else if (col.def.required) return this.reject(buf, start, j, 'required', '');
        continue;
      }
      if (col.free) continue;
      const code = checkField(buf, s, e, f[3 * j + 2]!, col);
      if (code !== null) return this.reject(buf, start, j, code, '');
    }
    const out = this.out;
    // A literal field (relaxed quotes) is quoted in the output and its quotes doubled: at most twice its size + 2.
    const bytes = end - start;
    out.reserve((sc.literal ? 2 * bytes + 2 * n : bytes) + LINE_OVERHEAD + (fill ? plan.defaultBytes : 0));
    out.writeInt(this.line);
    if (!sc.rebuild && !plan.rebuildAll && !fill) {
      out.byte(this.delimiter);
      out.copy(buf, start, end);
    } else {
      this.stats.rowsRebuilt++;
      this.writeRebuilt(buf, plan);
    }
    out.byte(LF);
    this.book(ACCEPTED, lines);
  }

  // Same fields, trimmed, blanks as NULL (nothing) or the column's default, unknown columns dropped,
  // dates and decimals in ISO / decimal-point form (unquoted: they hold no delimiter, quote or line end).
  // Quoted values stay quoted with their doubled quotes as they were, so no value needs re-escaping;
  // only a literal value (relaxed quotes) is quoted here and its quotes doubled.
  private writeRebuilt(buf: Buffer, plan: HeaderPlan): void {
    const out = this.out;
    const f = this.scanner.fields;
    const delimiter = this.delimiter;
    for (let j = 0; j < plan.columns.length; j++) {
      const col = plan.columns[j];
      if (col == null) continue;
      out.byte(delimiter);
      const s = f[3 * j]!;
      const e = f[3 * j + 1]!;
      if (s === e) {
        const fill = col.defaultCsv;
        if (fill !== null) out.copy(fill, 0, fill.length);
        continue;
      }
      const flags = f[3 * j + 2]!;
      if (col.convert !== CONVERT_NONE || flags & F_LITERAL) {
        this.writeRewritten(buf, s, e, flags, col);
      } else if (flags & F_QUOTED) {
        out.byte(QUOTE);
        out.copy(buf, s, e);
        out.byte(QUOTE);
      } else {
        out.copy(buf, s, e);
      }
    }
  }

  /** A value that is not written as it is: a literal one quoted, its quotes doubled; a converted one. */
  private writeRewritten(buf: Buffer, s: number, e: number, flags: number, col: CompiledColumn): void {
    const out = this.out;
    if (col.convert !== CONVERT_NONE) return this.writeConverted(buf, s, e, col.convert, col.date);
    out.byte(QUOTE);
    for (let i = s; i < e; i++) {
      const c = buf[i]!;
      if (c === QUOTE) out.byte(QUOTE);
      out.byte(c);
    }
    out.byte(QUOTE);
  }

  /** A checked date, timestamp or numeric value b[s, e) in the form COPY reads (as long as the original). */
  private writeConverted(buf: Buffer, s: number, e: number, convert: number, date: DateLayout | null): void {
    const out = this.out;
    if (convert === CONVERT_DECIMAL) {
      out.pos += pointDecimal(buf, s, e, out.buffer, out.pos);
      return;
    }
    isoDate(buf, s, date!, out.buffer, out.pos);
    out.pos += 10;
    if (convert === CONVERT_TIMESTAMP) out.copy(buf, s + 10, e);
  }

  /**
   * The header cannot be read because the file's lines end with a lone CR: say that, not what it
   * looks like to an LF/CRLF reader (a bare CR, a quote never closed, a header too large). Only called
   * on the way to a header failure, when the header record has run to the end of the data.
   */
  private refuseCrLineEndings(): void {
    if (this.plan !== null || !this.ledger.crLineEndings) return;
    throw new CsvFileError(
      'unsupported_line_endings',
      'the lines of this file end with a lone carriage return (CR, classic Mac OS); only LF and CRLF line endings are read: convert it (e.g. `tr "\\r" "\\n"`) and upload it again',
    );
  }

  private onHeaderRecord(buf: Buffer, start: number, utf8Ok: boolean, hasNul: boolean): void {
    if (this.scanner.malformed !== MALFORMED_NONE) this.refuseCrLineEndings();
    if (!utf8Ok) throw new CsvFileError('bad_header', 'header is not valid UTF-8');
    if (hasNul) throw new CsvFileError('bad_header', 'header contains a NUL byte');
    this.plan = planHeader(this.dataset, buf, start, this.scanner, this.line, this.opts.format);
    this.header = this.plan.info;
    this.opts.onHeader(this.header);
  }

  /** Index of the first field whose value bytes satisfy `bad`, or -1. */
  private fieldWhere(bad: (s: number, e: number) => boolean): number {
    const f = this.scanner.fields;
    for (let j = 0; j < this.scanner.fieldCount; j++) if (bad(f[3 * j]!, f[3 * j + 1]!)) return j;
    return -1;
  }

  /** Rejects the parsed record; `field` is a CSV position (-1: none). Cold path. */
  private reject(buf: Buffer, start: number, field: number, code: RejectCode, message: string): void {
    const plan = this.plan!;
    const col = field >= 0 ? plan.columns[field] : undefined;
    const name = field < 0 ? null : (col?.def.name ?? plan.names[field] ?? null);
    if (message === '' && col) {
      const f = this.scanner.fields;
      const value = decodeValue(buf, f[3 * field]!, f[3 * field + 1]!, f[3 * field + 2]!);
      message = describeReject(code, col.def, value) + spellingHint(code, col, this.opts.format ?? DEFAULT_INPUT_FORMAT);
    }
    this.emitReject(name, code, message, buf, start, this.scanner.contentEnd, this.scanner.newlines + 1);
  }

  private emitReject(column: string | null, code: RejectCode, message: string, buf: Buffer, s: number, e: number, lines: number): void {
    const line = this.line;
    this.book(code === 'malformed_csv' || code === 'record_too_large' ? BROKEN : REJECTED, lines);
    this.opts.onReject({ line, lines, column, code, message, raw: rawText(buf, s, e) });
  }
}

/** The record as text for the reject log: ≤ RAW_CAP bytes cut on a character boundary, with
 * invalid UTF-8 and NUL as U+FFFD so it can be stored in PostgreSQL. */
function rawText(buf: Buffer, s: number, e: number): string {
  let end = Math.min(e, s + RAW_CAP);
  if (end < e) while (end > s && (buf[end]! & 0xc0) === 0x80) end--;
  return buf.toString('utf8', s, end).replaceAll('\u0000', '\uFFFD');
}

export function createCopyTransform(dataset: DatasetDef, opts: CopyTransformOptions): CopyTransform {
  return new CopyTransform(dataset, opts);
}
