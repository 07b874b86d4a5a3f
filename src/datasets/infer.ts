// Inferring a dataset from a sample, as DuckDB's sniff_csv does: given the first bytes of a CSV file,
// propose a definition (src/datasets/definition.ts) that normaliseDefinition accepts unchanged — column
// names from the header (made valid identifiers, the header kept as an alias when it differs), types and
// `required` from the values, and the input format (src/ingest/csv/input-format.ts) the file is written
// in — plus what each column held and the dialect sniffed. Everything is judged on the sample only: a
// value later in the file may not fit, which the answer says.
// Pure: no I/O. Problems are InferError (src/datasets/infer-dialect.ts) with a stable error-table code.
import type { InputFormat } from '../ingest/csv/input-format.ts';
import { BUILT_IN_DATASETS, MAX_COLUMNS, type DatasetInput } from './definition.ts';
import { decodeSample, InferError, readRecords, sniffDelimiter } from './infer-dialect.ts';
import { chooseDateFormat, chooseDecimalSeparator, fitsType, inferType, type InferredType, type ValueSpelling } from './infer-types.ts';
import { identifierProblem, MAX_IDENTIFIER_LENGTH, SYSTEM_COLUMNS } from './identifiers.ts';

export { InferError } from './infer-dialect.ts';

/** Records read from a sample at most (DuckDB's sniff_csv samples 20,480 rows). */
export const MAX_SAMPLE_RECORDS = 20_480;
/** Characters of the sample the delimiter is sniffed on. */
const SNIFF_CHARS = 64 * 1024;
/** Distinct example values reported per column. */
const EXAMPLES = 5;
/** ColumnBody's limit on an alias. */
const MAX_ALIAS_LENGTH = 200;

export interface InferOptions {
  /** the proposed dataset's name, made an identifier (default "dataset") */
  name?: string;
  /** the sample is the whole file: its last line is complete even without a line break */
  complete: boolean;
}

/** What one column of the sample held and what is proposed for it. */
export interface InferredColumn {
  /** the proposed column name */
  name: string;
  /** the header as written (trimmed) */
  header: string;
  /** the proposed type as in the definition: text, integer, …, numeric(p,s) */
  type: string;
  /** true when no value of the sample was empty (and it had rows) */
  required: boolean;
  nullable: boolean;
  /** rows of the sample */
  values: number;
  /** of them, empty (after trimming) */
  empty: number;
  /** the longest value, in characters */
  maxLength: number;
  /** up to 5 distinct non-empty values, in order of appearance */
  samples: string[];
}

/** How the sample is written. */
export interface InferredDialect extends InputFormat {
  /** the sample began with a byte order mark */
  bom: boolean;
  /** always true: the first record is the header (a sample whose first line is data is refused) */
  header: true;
  lineTerminator: '\r\n' | '\n';
  /** day and month were both ≤ 12 everywhere: `dateFormat` is a guess (from the delimiter and decimal separator) */
  dateFormatAmbiguous: boolean;
  /** a partial last line of the sample was left out */
  cutLine: boolean;
}

export interface Inference {
  definition: DatasetInput;
  columns: InferredColumn[];
  dialect: InferredDialect;
  /** data rows judged (the header excluded) */
  sampledRows: number;
  /** the basis of the proposal, to show a user: it is inferred from a sample */
  note: string;
  /** what the user should check before loading (duplicate headers, rows of another width …) */
  warnings: string[];
}

/**
 * Proposes a dataset for the CSV file that `sample` begins with (the whole file when `complete`). Throws
 * InferError: `sample_empty` (no complete line), `unsupported_media_type` (binary), `sample_no_header`
 * (the first line is data), `invalid_dataset` (more columns than a dataset may have, or a built-in name).
 */
export function inferDataset(sample: Buffer, options: InferOptions): Inference {
  const decoded = decodeSample(sample, options.complete);
  const delimiter = sniffDelimiter(decoded.text.slice(0, SNIFF_CHARS));
  const { records, quotes, stoppedBy } = readRecords(decoded.text, delimiter, MAX_SAMPLE_RECORDS);
  const warnings: string[] = [];
  const header = records[0];
  if (!header || header.every((h) => h.trim() === '')) throw new InferError('sample_no_header', 'the first line of the sample is empty: a header naming the columns is needed');
  if (header.length > MAX_COLUMNS) throw new InferError('invalid_dataset', `the header has ${header.length} columns; a dataset has at most ${MAX_COLUMNS}`);
  if (stoppedBy !== null && (options.complete || stoppedBy !== 'CSV_QUOTE_NOT_CLOSED')) {
    warnings.push(`the sample could not be parsed after record ${records.length} (${stoppedBy}): the rows after it were not judged`);
  }
  const rows = records.slice(1);
  const width = header.length;
  const uneven = rows.filter((r) => r.length !== width).length;
  if (uneven > 0) warnings.push(`${uneven} of ${rows.length} rows do not have the header's ${width} fields: the loader rejects them`);
  const cells = header.map((_, j) => rows.map((r) => (r[j] ?? '').trim()));
  const filled = cells.map((values) => values.filter((v) => v !== ''));

  const decimalSeparator = chooseDecimalSeparator(filled, delimiter);
  const { dateFormat, ambiguous } = chooseDateFormat(filled, delimiter !== ',' || decimalSeparator === ',');
  if (ambiguous) warnings.push(`every date has day and month ≤ 12: ${dateFormat} is a guess; check it`);
  const types = filled.map((values) => inferType(values, { dateFormat, decimalSeparator }));
  if (rows.length > 0 && looksLikeData(header, types, { dateFormat, decimalSeparator })) {
    throw new InferError('sample_no_header', `the first line reads as data (${JSON.stringify(header.slice(0, 5).join(delimiter).slice(0, 80))}): a header naming the columns is needed`);
  }

  const names = columnNames(header, warnings);
  const columns = header.map((h, j): InferredColumn => {
    const values = cells[j]!;
    const empty = values.length - filled[j]!.length;
    const required = rows.length > 0 && empty === 0;
    return {
      name: names[j]!.name,
      header: h.trim(),
      type: types[j]!.canonical,
      required,
      nullable: !required,
      values: values.length,
      empty,
      maxLength: filled[j]!.reduce((n, v) => Math.max(n, [...v].length), 0),
      samples: [...new Set(filled[j])].slice(0, EXAMPLES),
    };
  });
  const format: InputFormat = { delimiter, encoding: decoded.encoding, dateFormat, decimalSeparator, quotes };
  const definition: DatasetInput = {
    name: datasetName(options.name ?? 'dataset'),
    columns: columns.map((c, j) => ({
      name: c.name,
      type: c.type,
      ...(c.required && { required: true }),
      ...(names[j]!.alias !== undefined && { aliases: [names[j]!.alias!] }),
    })),
    format,
  };
  return {
    definition,
    columns,
    dialect: {
      ...format,
      bom: decoded.bom,
      header: true,
      lineTerminator: decoded.text.includes('\r\n') ? '\r\n' : '\n',
      dateFormatAmbiguous: ambiguous,
      cutLine: decoded.cutLine,
    },
    sampledRows: rows.length,
    note: `types and required are inferred from the first ${rows.length} row(s) of the file only: a later value may not fit; check them before loading the whole file`,
    warnings,
  };
}

/** A header whose every value under a typed (not text) column fits that type too: data, not names. */
function looksLikeData(header: readonly string[], types: readonly InferredType[], spelling: ValueSpelling): boolean {
  const typed = types.flatMap((t, j) => (t.type === 'text' ? [] : [j]));
  return typed.length > 0 && typed.every((j) => header[j]!.trim() !== '' && fitsType(header[j]!.trim(), types[j]!.type, spelling));
}

/**
 * `text` as an identifier: accents dropped, lower case, every run of other characters one `_`, a
 * leading digit or `pg_` prefixed with `_`, a reserved word or system column suffixed with `_`, at most
 * 63 characters; `fallback` when nothing is left.
 */
export function toIdentifier(text: string, fallback: string): string {
  let name = text
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9_]+/g, '_')
    .replace(/^_+|_+$/g, '');
  if (name === '') name = fallback;
  if (/^[0-9]/.test(name) || name.startsWith('pg_')) name = `_${name}`;
  name = name.slice(0, MAX_IDENTIFIER_LENGTH);
  while (identifierProblem(name) !== null || SYSTEM_COLUMNS.has(name)) name = `${name.slice(0, MAX_IDENTIFIER_LENGTH - 1)}_`;
  return name;
}

function withSuffix(base: string, suffix: string): string {
  return base.slice(0, MAX_IDENTIFIER_LENGTH - suffix.length) + suffix;
}

/**
 * Each header's column name — distinct, and never another header's own spelling (the loader matches
 * headers to names and aliases case-insensitively) — and its alias: the header as written when it
 * differs from the name.
 */
function columnNames(header: readonly string[], warnings: string[]): { name: string; alias?: string }[] {
  const keys = header.map((h) => h.trim().toLowerCase());
  const taken = new Set<string>();
  return header.map((raw, i) => {
    const written = raw.trim();
    const base = toIdentifier(written, `column_${i + 1}`);
    let name = base;
    for (let n = 2; taken.has(name) || keys.some((k, j) => j !== i && k === name); n++) name = withSuffix(base, `_${n}`);
    taken.add(name);
    const key = written.toLowerCase();
    if (written === '') warnings.push(`column ${i + 1} has no header name: the loader ignores it until the file names it "${name}"`);
    if (key === name || written === '') return { name };
    if (taken.has(key)) {
      warnings.push(`header "${written.slice(0, 80)}" appears more than once: the loader refuses a file with duplicate headers`);
      return { name };
    }
    if (written.length > MAX_ALIAS_LENGTH) {
      warnings.push(`header "${written.slice(0, 80)}…" is longer than ${MAX_ALIAS_LENGTH} characters: rename it to "${name}" in the file`);
      return { name };
    }
    taken.add(key);
    return { name, alias: written };
  });
}

/** The dataset name proposed for `name`: an identifier, not a built-in dataset's. */
function datasetName(name: string): string {
  const id = toIdentifier(name, 'dataset');
  if (BUILT_IN_DATASETS.has(id)) throw new InferError('invalid_dataset', `dataset name "${id}" is built in; choose another name`);
  return id;
}
