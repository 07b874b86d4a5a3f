// The second step of inferring a dataset from a sample (src/datasets/infer.ts): what the values are. A
// column's type is the most specific one every non-empty value of the sample fits — boolean, integer,
// bigint, numeric, uuid, date, timestamptz, jsonb (objects and arrays), else text — judged by the
// loader's own validators (src/ingest/csv/validate.ts), so a proposed type accepts the sample's values.
// The file's date spelling (ISO 8601, DD/MM/YYYY, MM/DD/YYYY, DD.MM.YYYY …: day and month told apart by
// values above 12) and decimal separator (a comma when values read 12,5 or 1.234,56) are chosen once per
// file, as the loader reads them (src/ingest/csv/input-format.ts).
// Pure: no I/O.
import { DATE_FORMATS, DEFAULT_INPUT_FORMAT, type DateFormat, type DecimalSeparator, type Delimiter } from '../ingest/csv/input-format.ts';
import { checkJsonb } from '../ingest/csv/json.ts';
import { checkInteger, INT4_LIMITS, INT8_LIMITS, INT_OK, isBoolean, isDate, isNumeric, isTimestamp, isUuid } from '../ingest/csv/validate.ts';

/** How the file spells dates and decimals. */
export interface ValueSpelling {
  dateFormat: DateFormat;
  decimalSeparator: DecimalSeparator;
}

/** A column's inferred type: base type and canonical spelling (numeric(p,s) when the sample has one scale). */
export interface InferredType {
  type: 'text' | 'integer' | 'bigint' | 'numeric' | 'boolean' | 'uuid' | 'date' | 'timestamptz' | 'jsonb';
  canonical: string;
}

const ascii = (v: string) => Buffer.from(v, 'latin1');
const isAscii = (v: string) => !/[^\x20-\x7e]/.test(v);

/**
 * `value` (a date, or a timestamp whose first 10 characters are its date) written in `format`, as ISO
 * 8601's YYYY-MM-DD…; null when its separators are not the format's. The digits are left to the validator.
 */
export function isoSpelling(value: string, format: DateFormat): string | null {
  if (format === 'YYYY-MM-DD') return value;
  if (value.length < 10) return null;
  const [a, b] = format.startsWith('YYYY') ? [4, 7] : [2, 5];
  const sep = format[a]!;
  if (value[a] !== sep || value[b] !== sep) return null;
  const at = (part: string) => format.indexOf(part);
  const y = value.slice(at('YYYY'), at('YYYY') + 4);
  const m = value.slice(at('MM'), at('MM') + 2);
  const d = value.slice(at('DD'), at('DD') + 2);
  return `${y}-${m}-${d}${value.slice(10)}`;
}

/** Which kind of date value `value` is in `format`: 'date', 'timestamptz' or null. */
function dateKind(value: string, format: DateFormat): 'date' | 'timestamptz' | null {
  if (!isAscii(value)) return null;
  const iso = isoSpelling(value, format);
  if (iso === null) return null;
  const b = ascii(iso);
  if (isDate(b, 0, b.length)) return 'date';
  return isTimestamp(b, 0, b.length) ? 'timestamptz' : null;
}

/** The date kind all `values` share in `format`, or null. */
function datesIn(values: readonly string[], format: DateFormat): 'date' | 'timestamptz' | null {
  let kind: 'date' | 'timestamptz' | null = null;
  for (const v of values) {
    const k = dateKind(v, format);
    if (k === null || (kind !== null && k !== kind)) return null;
    kind = k;
  }
  return kind;
}

/**
 * The date format of a file whose columns hold `columns` (non-empty values each): the one under which
 * most columns are all dates (or all timestamps). Ties go to ISO 8601, then — day and month both ≤ 12
 * everywhere — to DD/MM/YYYY when `dayFirst` (a European-looking file) else MM/DD/YYYY; `ambiguous` says
 * such a tie was broken by that guess.
 */
export function chooseDateFormat(columns: readonly (readonly string[])[], dayFirst: boolean): { dateFormat: DateFormat; ambiguous: boolean } {
  const order = [...DATE_FORMATS].sort((a, b) => rank(a, dayFirst) - rank(b, dayFirst));
  const fits = new Map(order.map((f) => [f, columns.filter((values) => values.length > 0 && datesIn(values, f) !== null).length]));
  const best = order.reduce((a, b) => (fits.get(b)! > fits.get(a)! ? b : a));
  if (fits.get(best) === 0) return { dateFormat: DEFAULT_INPUT_FORMAT.dateFormat, ambiguous: false };
  const other = best === 'DD/MM/YYYY' ? 'MM/DD/YYYY' : best === 'MM/DD/YYYY' ? 'DD/MM/YYYY' : null;
  return { dateFormat: best, ambiguous: other !== null && fits.get(other) === fits.get(best) };
}

function rank(format: DateFormat, dayFirst: boolean): number {
  if (format === 'YYYY-MM-DD') return 0;
  if (format === (dayFirst ? 'DD/MM/YYYY' : 'MM/DD/YYYY')) return 1;
  return 2 + DATE_FORMATS.indexOf(format);
}

const COMMA_DECIMAL = /^[+-]?\d+,\d+$/;
const GROUPED_COMMA_DECIMAL = /^[+-]?\d{1,3}(\.\d{3})+(,\d+)?$/;
const POINT_DECIMAL = /^[+-]?\d*\.\d+$/;

/**
 * The decimal separator of a file: a comma when the delimiter is not one and more columns read as
 * comma decimals (12,5 or 1.234,56; integers besides) than as point decimals (12.5).
 */
export function chooseDecimalSeparator(columns: readonly (readonly string[])[], delimiter: Delimiter): DecimalSeparator {
  if (delimiter === ',') return '.';
  let comma = 0;
  let point = 0;
  for (const values of columns) {
    if (values.length === 0 || !values.every((v) => /^[+-]?[\d.,]+$/.test(v))) continue;
    if (values.some((v) => COMMA_DECIMAL.test(v) || (GROUPED_COMMA_DECIMAL.test(v) && v.includes(',')))) comma++;
    else if (values.some((v) => POINT_DECIMAL.test(v))) point++;
  }
  return comma > point ? ',' : '.';
}

/** A digit string of more than one character starting with 0 (007, 01234): a code, not a number. */
const LEADING_ZERO = /^[+-]?0\d/;

/** `value` with a point for the file's decimal separator, or null when it holds the other one. */
function pointed(value: string, separator: DecimalSeparator): string | null {
  if (separator === '.') return value.includes(',') ? null : value;
  return value.includes('.') ? null : value.replace(',', '.');
}

/** The types tried in turn: the first that every value fits is the column's. */
const CANDIDATES = ['boolean', 'integer', 'bigint', 'numeric', 'uuid', 'date', 'timestamptz', 'jsonb'] as const;

/**
 * The most specific type all `values` (non-empty, trimmed) fit, spelled as the file spells them; text
 * for none. 0/1 alone are integers (a boolean needs a true/false/yes/no/t/f spelling); digits with a
 * leading zero are codes (text); numeric gets (p,s) when every fractional value has the same scale s,
 * with at least 10 integer digits of room (a sample's largest value is rarely the file's).
 */
export function inferType(values: readonly string[], spelling: ValueSpelling): InferredType {
  if (values.length > 0) {
    for (const type of CANDIDATES) {
      if (type === 'boolean' && values.every((v) => v === '0' || v === '1')) continue;
      if (!values.every((v) => fitsType(v, type, spelling))) continue;
      return type === 'numeric' ? numericType(values.map((v) => pointed(v, spelling.decimalSeparator)!)) : { type, canonical: type };
    }
  }
  return { type: 'text', canonical: 'text' };
}

/** Whether the single (trimmed) `value` fits `type` as inferType judges it, spelled as the file spells values. */
export function fitsType(value: string, type: InferredType['type'], spelling: ValueSpelling): boolean {
  const b = isAscii(value) ? ascii(value) : null;
  const number = !LEADING_ZERO.test(value);
  switch (type) {
    case 'text':
      return true;
    case 'boolean':
      return b !== null && isBoolean(b, 0, b.length);
    case 'integer':
    case 'bigint':
      return b !== null && number && checkInteger(b, 0, b.length, type === 'integer' ? INT4_LIMITS : INT8_LIMITS) === INT_OK;
    case 'numeric': {
      const v = pointed(value, spelling.decimalSeparator);
      return v !== null && number && isAscii(v) && isNumeric(ascii(v), 0, v.length);
    }
    case 'uuid':
      return b !== null && isUuid(b, 0, b.length);
    case 'date':
    case 'timestamptz':
      return dateKind(value, spelling.dateFormat) === type;
    case 'jsonb':
      return (value.startsWith('{') || value.startsWith('[')) && checkJsonb(value) === null;
  }
}

/** Least integer digits of room a proposed numeric(p,s) leaves. */
const NUMERIC_ROOM = 10;

function numericType(values: readonly string[]): InferredType {
  const scales = new Set<number>();
  let intDigits = 0;
  for (const v of values) {
    if (/[eE]/.test(v)) return { type: 'numeric', canonical: 'numeric' };
    const [int = '', frac] = v.replace(/^[+-]/, '').split('.');
    intDigits = Math.max(intDigits, int.replace(/^0+/, '').length);
    if (frac !== undefined) scales.add(frac.length);
  }
  const [scale] = [...scales];
  if (scales.size !== 1 || scale === undefined || scale === 0) return { type: 'numeric', canonical: 'numeric' };
  return { type: 'numeric', canonical: `numeric(${Math.max(intDigits, NUMERIC_ROOM) + scale},${scale})` };
}
