// Per-column validation of one non-empty, trimmed field, on its bytes where the type allows; dates and
// decimals written in the file's own spelling (its InputFormat) are checked as the ISO / decimal-point
// value the output will carry (see convert.ts).

import type { ColumnDef } from '../datasets/types.ts';
import { dateLayout, isoDate, pointDecimal, type DateLayout } from './convert.ts';
import { DEFAULT_INPUT_FORMAT, type InputFormat } from './input-format.ts';
import { checkJsonb } from './json.ts';
import { isJsonb } from './json-bytes.ts';
import { F_ESCAPED } from './scan.ts';
import type { RejectCode } from './types.ts';
import {
  checkInteger,
  INT4_LIMITS,
  INT8_LIMITS,
  INT_OK,
  INT_OUT_OF_RANGE,
  isBoolean,
  isDate,
  isDateAt,
  isNumeric,
  isTimeAfterDate,
  numericFits,
  isTimestamp,
  isUuid,
} from './validate.ts';

/** How a valid value is written to the output: as it is, or converted (see convert.ts). */
export const CONVERT_NONE = 0;
/** date: the file's date spelling → YYYY-MM-DD */
export const CONVERT_DATE = 1;
/** timestamptz: its first 10 bytes as CONVERT_DATE, the rest as it is */
export const CONVERT_TIMESTAMP = 2;
/** numeric: decimal comma → point */
export const CONVERT_DECIMAL = 3;

export interface CompiledColumn {
  def: ColumnDef;
  /** Needs nothing beyond the record-level UTF-8 / NUL checks (plain text). */
  free: boolean;
  values: ReadonlySet<string> | null;
  /** The default as a quoted CSV field, sent for an empty value; null without a default. */
  defaultCsv: Buffer | null;
  /** CONVERT_*: a non-empty value of this column is rewritten in the output. */
  convert: number;
  /** date / timestamptz: the file's date layout; null for ISO 8601's own. */
  date: DateLayout | null;
}

/** The column's checks and output rules for files written in `format` (default: RFC 4180 / ISO 8601). */
export function compileColumn(def: ColumnDef, format: InputFormat = DEFAULT_INPUT_FORMAT): CompiledColumn {
  const plainText = def.type === 'text' && def.maxLength === undefined && def.pattern === undefined;
  const defaultCsv = def.default === undefined ? null : Buffer.from(`"${def.default.replaceAll('"', '""')}"`);
  const date = def.type === 'date' || def.type === 'timestamptz' ? dateLayout(format.dateFormat) : null;
  let convert = CONVERT_NONE;
  if (date !== null) convert = def.type === 'date' ? CONVERT_DATE : CONVERT_TIMESTAMP;
  else if (def.type === 'numeric' && format.decimalSeparator === ',') convert = CONVERT_DECIMAL;
  return { def, free: plainText, values: def.values ? new Set(def.values) : null, defaultCsv, convert, date };
}

/** A date's ISO form while it is checked. */
const SCRATCH = new Uint8Array(10);
/** A decimal-comma number's decimal-point form while it is checked (grown to the longest value seen). */
let decimalScratch = new Uint8Array(64);

/** The numeric checks of checkField on b[s, e) written with a decimal comma, as its decimal-point form (see pointDecimal). */
function checkDecimalComma(b: Uint8Array, s: number, e: number, def: ColumnDef): RejectCode | null {
  if (decimalScratch.length < e - s) decimalScratch = new Uint8Array(2 * (e - s));
  const n = pointDecimal(b, s, e, decimalScratch, 0);
  if (n < 0 || !isNumeric(decimalScratch, 0, n)) return 'invalid_numeric';
  return def.precision === undefined || numericFits(decimalScratch, 0, n, def.precision, def.scale ?? 0) ? null : 'out_of_range';
}

/** b[s, s+10) is a real date written in `layout`. */
function isDateIn(b: Uint8Array, s: number, layout: DateLayout): boolean {
  return isoDate(b, s, layout, SCRATCH, 0) && isDateAt(SCRATCH, 0);
}

/** The value as PostgreSQL will see it: decoded, doubled quotes unescaped. */
export function decodeValue(b: Buffer, s: number, e: number, flags: number): string {
  const text = b.toString('utf8', s, e);
  return flags & F_ESCAPED ? text.replaceAll('""', '"') : text;
}

/** Length in Unicode code points (what PostgreSQL counts for varchar(n)); bytes are valid UTF-8. */
function charLength(b: Uint8Array, s: number, e: number, flags: number): number {
  let n = 0;
  let quotes = 0;
  for (let i = s; i < e; i++) {
    const c = b[i]!;
    if ((c & 0xc0) !== 0x80) n++;
    if (c === 0x22) quotes++;
  }
  return flags & F_ESCAPED ? n - quotes / 2 : n;
}

/**
 * Checks the non-empty trimmed value b[s, e). Returns null if PostgreSQL will accept it for the
 * column (and it meets the dataset's rules), else the reject code.
 */
export function checkField(b: Buffer, s: number, e: number, flags: number, col: CompiledColumn): RejectCode | null {
  const def = col.def;
  // A doubled quote is a literal `"`: never valid in a uuid/number/date/boolean, so the byte
  // checks below reject it without special handling.
  switch (def.type) {
    case 'text':
      return checkText(b, s, e, flags, def);
    case 'uuid':
      return isUuid(b, s, e) ? null : 'invalid_uuid';
    case 'bigint':
    case 'integer': {
      const r = checkInteger(b, s, e, def.type === 'bigint' ? INT8_LIMITS : INT4_LIMITS);
      if (r === INT_OK) return null;
      return r === INT_OUT_OF_RANGE ? 'out_of_range' : 'invalid_integer';
    }
    case 'numeric':
      if (col.convert === CONVERT_DECIMAL) return checkDecimalComma(b, s, e, def);
      if (!isNumeric(b, s, e)) return 'invalid_numeric';
      return def.precision === undefined || numericFits(b, s, e, def.precision, def.scale ?? 0) ? null : 'out_of_range';
    case 'boolean':
      return isBoolean(b, s, e) ? null : 'invalid_boolean';
    case 'date': {
      const layout = col.date;
      return (layout === null ? isDate(b, s, e) : e - s === 10 && isDateIn(b, s, layout)) ? null : 'invalid_date';
    }
    case 'timestamptz': {
      const layout = col.date;
      if (layout === null) return isTimestamp(b, s, e) ? null : 'invalid_timestamp';
      return e - s >= 16 && isDateIn(b, s, layout) && isTimeAfterDate(b, s, e) ? null : 'invalid_timestamp';
    }
    case 'jsonb':
      return isJsonb(b, s, e, flags & F_ESCAPED ? 2 : 1) ? null : 'invalid_json';
    case 'enum':
      return col.values?.has(decodeValue(b, s, e, flags)) ? null : 'invalid_enum';
  }
}

function checkText(b: Buffer, s: number, e: number, flags: number, def: ColumnDef): RejectCode | null {
  // Bytes ≥ characters, so the exact count is needed only for values near the limit.
  if (def.maxLength !== undefined && e - s > def.maxLength) {
    if (charLength(b, s, e, flags) > def.maxLength) return 'too_long';
  }
  if (def.pattern && !def.pattern.test(decodeValue(b, s, e, flags))) return 'pattern';
  return null;
}

/** What a reject message adds when the file spells the column's values its own way, e.g. " (dates written DD/MM/YYYY)". */
export function spellingHint(code: RejectCode, col: CompiledColumn, format: InputFormat): string {
  if (col.date !== null && (code === 'invalid_date' || code === 'invalid_timestamp')) return ` (dates written ${format.dateFormat})`;
  if (col.convert === CONVERT_DECIMAL && (code === 'invalid_numeric' || code === 'out_of_range')) return ' (decimal comma, points only as thousands separators)';
  return '';
}

/** Human-readable reason for a field reject (cold path: may recompute). */
export function describeReject(code: RejectCode, def: ColumnDef, value: string): string {
  const shown = JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
  switch (code) {
    case 'required':
      return `${def.name} is required`;
    case 'invalid_json':
      return `${def.name}: invalid JSON for jsonb (${checkJsonb(value) ?? 'rejected'})`;
    case 'too_long':
      return `${def.name}: ${[...value].length} characters, at most ${def.maxLength} allowed`;
    case 'pattern':
      return `${def.name}: ${shown} does not match /${def.pattern?.source ?? ""}/`;
    case 'invalid_enum':
      return `${def.name}: ${shown} is not one of ${(def.values ?? []).join(', ')}`;
    case 'out_of_range':
      return `${def.name}: ${shown} is out of range for ${def.precision === undefined ? def.type : `numeric(${def.precision},${def.scale ?? 0})`}`;
    default:
      return `${def.name}: ${shown} is not a valid ${def.type}`;
  }
}
