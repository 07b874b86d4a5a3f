// The reference the CSV→COPY transform is tested against: csv-parse (strict quoting: no relax_quotes;
// with a format, its delimiter and relax_quotes for `quotes: relaxed`) for the records, plus straightforward checks (regexes, BigInt, JSON.parse) for the values — nothing of
// the transform's own code. Both sides are reduced to the same shape: the file's outcome (loaded, or the
// code it failed with) and, per physical line, what became of it.
//
// Rules the reference adds on top of csv-parse, each the transform's documented behaviour:
//  - a record whose only field is unquoted and blank (spaces/tabs) is a blank line, skipped;
//  - a CR in an unquoted field is malformed_csv (PostgreSQL's COPY refuses an unquoted CR too);
//  - values are trimmed of spaces/tabs, and a blank value is NULL;
//  - a record csv-parse skips (a quote error) is malformed_csv on every line it covers;
//  - the data ending inside a quoted field fails the file (unterminated_quote);
//  - a file with CRs and no LF (classic Mac line endings) may fail as unsupported_line_endings.
// One csv-parse quirk is stepped around: it takes a NUL byte right after a quote for the end of the data
// (`!nextChr`) and closes the field there. NUL is no CSV syntax, so NULs are swapped for 0x01 (absent
// from the inputs) while csv-parse reads, and swapped back in the values.
import { isUtf8 } from 'node:buffer';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parse } from 'csv-parse/sync';
import { createCopyTransform, CsvFileError, type Reject } from '../../src/ingest/csv/index.ts';
import { DEFAULT_INPUT_FORMAT, type InputFormat } from '../../src/ingest/csv/input-format.ts';
import type { ColumnDef, DatasetDef } from '../../src/ingest/datasets/types.ts';

/** What became of a file: loaded (with per-line outcomes and the loaded values), or failed with a code. */
export interface Outcome {
  /** the code the file failed with, or null */
  failure: string | null;
  /** every code the file may rightly fail with (the reference cannot always tell which comes first) */
  admissible?: string[];
  /** physical line → 'loaded' or the reject code; blank and header lines are absent */
  lines: Map<number, string>;
  /** loaded rows in order: [line number, ...values of the known columns in header order] */
  rows: (string | null)[][];
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const TS = /^(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d)(?::(\d\d)(?:\.\d{1,9})?)?(?:Z|[+-](\d\d)(?::?(\d\d))?)?$/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const LF = 0x0a;
const SOH = 0x01;

function realDate(y: number, m: number, d: number): boolean {
  const t = new Date(0);
  t.setUTCFullYear(y, m - 1, d);
  return y >= 1 && t.getUTCFullYear() === y && t.getUTCMonth() === m - 1 && t.getUTCDate() === d;
}

function jsonbOk(v: string): boolean {
  let ok = true;
  const visit = (x: unknown): void => {
    if (typeof x === 'string') ok &&= !x.includes('\u0000') && !LONE_SURROGATE.test(x);
    else if (x && typeof x === 'object') for (const [k, y] of Object.entries(x)) (visit(k), visit(y));
  };
  try {
    visit(JSON.parse(v));
  } catch {
    return false;
  }
  return ok;
}

/** The reject code for a non-empty trimmed value of column `c`, or null (webhook_events' types). */
export function referenceCheck(c: ColumnDef, v: string): string | null {
  switch (c.type) {
    case 'uuid':
      return UUID.test(v) ? null : 'invalid_uuid';
    case 'bigint': {
      if (!/^[+-]?\d+$/.test(v)) return 'invalid_integer';
      const n = BigInt(v);
      return n >= -(2n ** 63n) && n < 2n ** 63n ? null : 'out_of_range';
    }
    case 'timestamptz': {
      const m = TS.exec(v);
      if (!m) return 'invalid_timestamp';
      const [, y, mo, d, h, mi, s, oh, om] = m.map((x) => (x === undefined ? 0 : Number(x)));
      const ok = realDate(y!, mo!, d!) && h! <= 23 && mi! <= 59 && s! <= 59 && oh! <= 15 && om! <= 59;
      return ok ? null : 'invalid_timestamp';
    }
    case 'jsonb':
      return jsonbOk(v) ? null : 'invalid_json';
    case 'text':
      if (c.maxLength !== undefined && [...v].length > c.maxLength) return 'too_long';
      if (c.pattern && !c.pattern.test(v)) return 'pattern';
      return null;
    default:
      throw new Error(`reference does not cover ${c.type}`);
  }
}

interface Field {
  /** the value's bytes (latin1 maps bytes 1:1 to characters) */
  bytes: Buffer;
  quoted: boolean;
}

/** Blanks are spaces and tabs, or spaces only when TAB is the delimiter. */
const blanks = (format: InputFormat): string => (format.delimiter === '\t' ? ' ' : ' \t');
const trimmer = (format: InputFormat) => {
  const edges = new RegExp(`^[${blanks(format)}]+|[${blanks(format)}]+$`, 'g');
  return (b: Buffer): string => b.toString('utf8').replace(edges, '');
};
const blankTest = (format: InputFormat) => {
  const only = new RegExp(`^[${blanks(format)}]*$`);
  return (fields: Field[]): boolean => fields.length === 1 && !fields[0]!.quoted && only.test(fields[0]!.bytes.toString('latin1'));
};

/** The reference reading of `input` for `dataset`, written in `format` (its delimiter and quotes; UTF-8). */
export function referenceLoad(input: Buffer, dataset: DatasetDef, format: InputFormat = DEFAULT_INPUT_FORMAT): Outcome {
  const trim = trimmer(format);
  const blank = blankTest(format);
  const body = input[0] === 0xef && input[1] === 0xbb && input[2] === 0xbf ? input.subarray(3) : input;
  if (body.includes(SOH)) throw new Error('reference: the input may not hold 0x01 (it stands in for NUL)');
  const swapped = Buffer.from(body.map((b) => (b === 0 ? SOH : b)));
  const skipped: string[] = [];
  const parsed = parse(swapped, {
    encoding: 'latin1',
    delimiter: format.delimiter,
    relax_quotes: format.quotes === 'relaxed',
    record_delimiter: ['\r\n', '\n'],
    relax_column_count: true,
    skip_empty_lines: false, // empty lines come back as records, so every line of a skipped record is known
    skip_records_with_error: true,
    on_skip: (err: { code?: string } | undefined) => void skipped.push(err?.code ?? 'unknown'),
    info: true,
    cast: (value: string, ctx: { quoting: boolean }) => ({ bytes: Buffer.from(value.replaceAll('\x01', '\0'), 'latin1'), quoted: ctx.quoting }),
  } as never) as unknown as { record: Field[]; info: { bytes: number } }[];
  // A file with CRs and not one LF has classic Mac line endings; when it fails, the transform may say so.
  const crOnly = !body.includes(LF) && body.includes(0x0d);
  const fail = (failure: string, ...also: string[]): Outcome => ({
    failure,
    admissible: [failure, ...also, ...(crOnly ? ['unsupported_line_endings'] : [])],
    lines: new Map(),
    rows: [],
  });
  // A file fails at the first thing that stops it: its header record (read before anything after it),
  // then a quote the data ends inside.
  const unterminated = skipped.includes('CSV_QUOTE_NOT_CLOSED');
  const unknown = skipped.filter((c) => !['CSV_INVALID_CLOSING_QUOTE', 'INVALID_OPENING_QUOTE', 'CSV_QUOTE_NOT_CLOSED'].includes(c));
  if (unknown.length > 0) throw new Error(`reference: unexpected csv-parse errors ${unknown.join(', ')}`);

  let physical = 0;
  for (let i = body.indexOf(LF); i !== -1; i = body.indexOf(LF, i + 1)) physical++;
  if (body.length > 0 && body[body.length - 1] !== LF) physical++;

  const out: Outcome = { failure: null, lines: new Map(), rows: [] };
  const covered = new Set<number>();
  let header: (ColumnDef | undefined)[] | null = null;
  // csv-parse's info.lines counts CRs too; physical lines are counted here from LFs. info.bytes is where
  // a record ends (after its terminator): the LFs before it give its last line.
  let lfs = 0;
  let at = 0;
  for (const { record, info } of parsed) {
    for (; at < info.bytes; at++) if (body[at] === LF) lfs++;
    const last = lfs + (body[info.bytes - 1] === LF ? 0 : 1);
    const newlines = record.reduce((n, f) => n + f.bytes.toString('latin1').split('\n').length - 1, 0);
    const first = last - newlines;
    for (let l = first; l <= last; l++) covered.add(l);
    if (blank(record)) continue;
    if (header === null) {
      // The header must be the first non-blank line; a skipped (malformed) one before it fails the file.
      for (let l = 1; l < first; l++) if (!covered.has(l)) return fail('bad_header');
      if (record.some((f) => !f.quoted && f.bytes.includes(0x0d)) || record.some((f) => !isUtf8(f.bytes) || f.bytes.includes(0))) {
        return fail('bad_header');
      }
      const names = record.map((f) => trim(f.bytes).toLowerCase());
      if (names.some((n, i) => n !== '' && names.indexOf(n) !== i)) return fail('bad_header');
      header = names.map((n) => dataset.columns.find((c) => c.name === n));
      if (dataset.columns.some((c) => c.required && !header!.includes(c))) return fail('missing_columns');
      continue;
    }
    const code = classify(record, header, trim);
    const outcome = typeof code === 'string' ? code : 'loaded';
    for (let l = first; l <= last; l++) out.lines.set(l, outcome);
    if (typeof code !== 'string') out.rows.push([String(first), ...code]);
  }
  if (header === null) {
    // No header came out: it is the unterminated record itself, or a malformed record before it —
    // csv-parse does not say where a skipped record ends, so either reason is right.
    if (unterminated) return fail('unterminated_quote', 'bad_header');
    for (let l = 1; l <= physical; l++) if (!covered.has(l)) return fail('bad_header');
    return fail('empty_file');
  }
  if (unterminated) return fail('unterminated_quote');
  for (let l = 1; l <= physical; l++) if (!covered.has(l)) out.lines.set(l, 'malformed_csv');
  return out;
}

/** A data record's reject code, or its loaded values (known columns, in header order). */
function classify(record: Field[], header: (ColumnDef | undefined)[], trim: (b: Buffer) => string): string | (string | null)[] {
  if (record.some((f) => !f.quoted && f.bytes.includes(0x0d))) return 'malformed_csv';
  if (!record.every((f) => isUtf8(f.bytes))) return 'invalid_utf8';
  if (record.some((f) => f.bytes.includes(0))) return 'nul_byte';
  if (record.length !== header.length) return 'field_count';
  const values: (string | null)[] = [];
  for (let j = 0; j < header.length; j++) {
    const col = header[j];
    if (!col) continue;
    const v = trim(record[j]!.bytes);
    if (v === '') {
      if (col.required) return 'required';
      values.push(null);
      continue;
    }
    const code = referenceCheck(col, v);
    if (code) return code;
    values.push(v);
  }
  return values;
}

/** COPY csv semantics: unquoted empty = NULL, quoted = string; `delimiter` as the COPY's. */
export const readCopy = (out: Buffer, delimiter = ','): (string | null)[][] =>
  parse(out, { delimiter, cast: (v: string, ctx: { quoting: boolean }) => (ctx.quoting ? v : v === '' ? null : v) } as never) as (string | null)[][];

/** The transform's reading of `input` (written in `format`), fed in `chunkSize`-byte chunks, reduced to an Outcome. */
export async function transformLoad(
  input: Buffer,
  dataset: DatasetDef,
  chunkSize: number,
  format: InputFormat = DEFAULT_INPUT_FORMAT,
): Promise<Outcome & { rejects: Reject[]; out: Buffer }> {
  const rejects: Reject[] = [];
  const chunks: Buffer[] = [];
  const t = createCopyTransform(dataset, { onHeader: () => {}, onReject: (r) => rejects.push(r), chunkBytes: 64 * 1024, format });
  const pieces: Buffer[] = [];
  for (let i = 0; i < input.length; i += chunkSize) pieces.push(input.subarray(i, i + chunkSize));
  try {
    await pipeline(Readable.from(pieces), t, new Writable({ write: (c: Buffer, _e, cb) => (chunks.push(c), cb()) }));
  } catch (err) {
    if (err instanceof CsvFileError) return { failure: err.code, lines: new Map(), rows: [], rejects, out: Buffer.alloc(0) };
    throw err;
  }
  const out = Buffer.concat(chunks);
  const rows = readCopy(out, format.delimiter);
  // The COPY output has a loaded record's first line only (a multi-line value may sit in a dropped
  // column): it runs to the last non-blank line before the next record starts.
  const body = input[0] === 0xef && input[1] === 0xbb && input[2] === 0xbf ? input.subarray(3) : input;
  const text = body.toString('latin1').split('\n');
  if (text.at(-1) === '') text.pop();
  const starts = [...rows.map((r) => Number(r[0])), ...rejects.map((r) => r.line), text.length + 1].sort((a, b) => a - b);
  const lines = new Map<number, string>();
  let next = 0;
  for (const row of rows) {
    const first = Number(row[0]);
    while (starts[next]! <= first) next++;
    let last = starts[next]! - 1;
    while (last > first && /^[ \t]*\r?$/.test(text[last - 1]!)) last--;
    for (let l = first; l <= last; l++) lines.set(l, 'loaded');
  }
  for (const r of rejects) for (let l = r.line; l < r.line + r.lines; l++) lines.set(l, r.code);
  return { failure: null, lines, rows, rejects, out };
}
