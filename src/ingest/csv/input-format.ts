// How a CSV file is written, beyond RFC 4180's defaults: the delimiter, the text encoding, how dates and
// decimals are spelled, and how strictly quotes are read. A dataset may set these as defaults (its
// definition's `format`), an upload may state them as fields; the default of every key is today's
// behaviour (RFC 4180: comma, UTF-8, ISO 8601 dates, decimal point, strict quotes).
// Pure: no I/O. Problems are InputFormatError whose message names the field and the allowed values.
import { Type, type Static } from '@sinclair/typebox';

/** The delimiters accepted (RFC 4180's comma and the three common others). */
export const DELIMITERS = [',', ';', '\t', '|'] as const;
/** Encodings accepted, as iconv-lite names them. `utf-16` needs a byte order mark (FF FE or FE FF). */
export const ENCODINGS = ['utf-8', 'utf-16', 'windows-1252', 'latin1'] as const;
/** Date spellings accepted: YYYY, MM and DD in one of these orders with one separator. */
export const DATE_FORMATS = ['YYYY-MM-DD', 'DD/MM/YYYY', 'MM/DD/YYYY', 'DD.MM.YYYY', 'DD-MM-YYYY', 'YYYY/MM/DD', 'YYYY.MM.DD'] as const;
export const DECIMAL_SEPARATORS = ['.', ','] as const;
/** strict: RFC 4180 (a quote inside an unquoted field is an error); relaxed: such a quote is a literal character. */
export const QUOTE_MODES = ['strict', 'relaxed'] as const;

export type Delimiter = (typeof DELIMITERS)[number];
export type Encoding = (typeof ENCODINGS)[number];
export type DateFormat = (typeof DATE_FORMATS)[number];
export type DecimalSeparator = (typeof DECIMAL_SEPARATORS)[number];
export type QuoteMode = (typeof QUOTE_MODES)[number];

/** A complete input format: every key set. */
export interface InputFormat {
  delimiter: Delimiter;
  encoding: Encoding;
  /** Applies to date columns and to the date part of timestamptz columns. */
  dateFormat: DateFormat;
  decimalSeparator: DecimalSeparator;
  quotes: QuoteMode;
}

/** RFC 4180 and ISO 8601: what a file is read as when nothing says otherwise. */
export const DEFAULT_INPUT_FORMAT: Readonly<InputFormat> = Object.freeze({
  delimiter: ',',
  encoding: 'utf-8',
  dateFormat: 'YYYY-MM-DD',
  decimalSeparator: '.',
  quotes: 'strict',
});

const names = (list: readonly string[]) => list.map((v) => JSON.stringify(v)).join(', ');

/** The JSON form (a dataset definition's `format`, an upload's fields): every key optional. */
export const InputFormatBody = Type.Object(
  {
    delimiter: Type.Optional(Type.String({ maxLength: 10, description: `the field delimiter: ${names(DELIMITERS)} (also "tab"); default ","` })),
    encoding: Type.Optional(Type.String({ maxLength: 40, description: `${names(ENCODINGS)} (case-insensitive; "utf8", "cp1252", "iso-8859-1" accepted); default "utf-8"` })),
    dateFormat: Type.Optional(Type.String({ maxLength: 20, description: `how date values (and timestamptz values' date part) are written: ${names(DATE_FORMATS)}; default "YYYY-MM-DD"` })),
    decimalSeparator: Type.Optional(Type.String({ maxLength: 1, description: 'numeric values\' decimal separator: "." or ","; default "."' })),
    quotes: Type.Optional(Type.String({ maxLength: 10, description: '"strict" (RFC 4180, default) or "relaxed" (a quote inside an unquoted field is a literal)' })),
  },
  { additionalProperties: false },
);
export type InputFormatInput = Static<typeof InputFormatBody>;

export class InputFormatError extends Error {
  override name = 'InputFormatError';
}

const ENCODING_ALIASES: Record<string, Encoding> = {
  'utf-8': 'utf-8',
  utf8: 'utf-8',
  'utf-16': 'utf-16',
  utf16: 'utf-16',
  'windows-1252': 'windows-1252',
  cp1252: 'windows-1252',
  win1252: 'windows-1252',
  latin1: 'latin1',
  'latin-1': 'latin1',
  'iso-8859-1': 'latin1',
  iso88591: 'latin1',
};

function pick<T extends string>(value: string, allowed: readonly T[], field: string): T {
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new InputFormatError(`${field} ${JSON.stringify(value.slice(0, 40))} is not supported; use one of ${names(allowed)}`);
}

/**
 * The given keys checked and spelled canonically, defaults left out (so equal formats are equal JSON and
 * applying the same definition twice changes nothing). `where` prefixes messages (e.g. "format"; "" names
 * the bare field, as an upload's form fields are named). Throws InputFormatError naming the field.
 */
export function normaliseInputFormat(input: InputFormatInput, where = 'format'): Partial<InputFormat> {
  const out: Partial<InputFormat> = {};
  const at = (field: keyof InputFormat): string => (where === '' ? field : `${where}.${field}`);
  if (input.delimiter !== undefined) {
    const d = input.delimiter.toLowerCase() === 'tab' || input.delimiter === '\\t' ? '\t' : input.delimiter;
    out.delimiter = pick(d, DELIMITERS, at('delimiter'));
  }
  if (input.encoding !== undefined) {
    const e = ENCODING_ALIASES[input.encoding.trim().toLowerCase()];
    if (!e) throw new InputFormatError(`${at('encoding')} ${JSON.stringify(input.encoding.slice(0, 40))} is not supported; use one of ${names(ENCODINGS)}`);
    out.encoding = e;
  }
  if (input.dateFormat !== undefined) out.dateFormat = pick(input.dateFormat.trim().toUpperCase() as DateFormat, DATE_FORMATS, at('dateFormat'));
  if (input.decimalSeparator !== undefined) out.decimalSeparator = pick(input.decimalSeparator, DECIMAL_SEPARATORS, at('decimalSeparator'));
  if (input.quotes !== undefined) out.quotes = pick(input.quotes.trim().toLowerCase() as QuoteMode, QUOTE_MODES, at('quotes'));
  for (const key of Object.keys(out) as (keyof InputFormat)[]) {
    if (out[key] === DEFAULT_INPUT_FORMAT[key]) delete out[key];
  }
  return out;
}

/** The format a load runs with: the upload's fields over the dataset's defaults over RFC 4180's. */
export function resolveInputFormat(...layers: (Partial<InputFormat> | undefined)[]): InputFormat {
  return Object.assign({}, DEFAULT_INPUT_FORMAT, ...layers.filter(Boolean)) as InputFormat;
}
