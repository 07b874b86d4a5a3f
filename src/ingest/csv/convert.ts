// Values written in a file's own spelling (src/ingest/csv/input-format.ts), turned into what PostgreSQL's
// COPY reads whatever its DateStyle and locale: ISO 8601 dates (YYYY-MM-DD) and a decimal point. Every
// spelling has the length of its ISO form, so a converted value is as long as the original and a
// record's output never grows (a decimal's thousands separators are dropped). Byte work only: no JS string per value.
import type { DateFormat } from './input-format.ts';

const MINUS = 0x2d;
const DOT = 0x2e;
const COMMA = 0x2c;

/** Where a DateFormat puts the year, month and day, and its separator. */
export interface DateLayout {
  year: number;
  month: number;
  day: number;
  /** the separator byte, at the two offsets that are not digits */
  sep: number;
  seps: readonly [number, number];
}

/** The layout of `format` (one of DATE_FORMATS: YYYY, MM and DD in some order with one separator); null for ISO's own. */
export function dateLayout(format: DateFormat): DateLayout | null {
  if (format === 'YYYY-MM-DD') return null;
  const year = format.indexOf('YYYY');
  const month = format.indexOf('MM');
  const day = format.indexOf('DD');
  const seps = [...format].flatMap((ch, i) => (/[YMD]/.test(ch) ? [] : [i]));
  if (year < 0 || month < 0 || day < 0 || seps.length !== 2) throw new Error(`date format ${format} is not YYYY, MM and DD with separators`);
  return { year, month, day, sep: format.charCodeAt(seps[0]!), seps: [seps[0]!, seps[1]!] };
}

/**
 * Writes the 10 bytes at b[s…] (a date in `layout`) to out[at…] as YYYY-MM-DD, digits unchecked (the
 * caller validates the result). Returns false, writing nothing, if the separators are not the layout's.
 */
export function isoDate(b: Uint8Array, s: number, layout: DateLayout, out: Uint8Array, at: number): boolean {
  if (b[s + layout.seps[0]] !== layout.sep || b[s + layout.seps[1]] !== layout.sep) return false;
  const y = s + layout.year;
  const m = s + layout.month;
  const d = s + layout.day;
  out[at] = b[y]!;
  out[at + 1] = b[y + 1]!;
  out[at + 2] = b[y + 2]!;
  out[at + 3] = b[y + 3]!;
  out[at + 4] = MINUS;
  out[at + 5] = b[m]!;
  out[at + 6] = b[m + 1]!;
  out[at + 7] = MINUS;
  out[at + 8] = b[d]!;
  out[at + 9] = b[d + 1]!;
  return true;
}

const PLUS = 0x2b;
const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;

/**
 * A number written with a decimal comma, b[s, e), copied to out[at…] with a decimal point and without its
 * thousands separators: `1.234,56` → `1234.56`. Points may only group the integer part by three digits
 * after a first group of one to three (`1.234.567`; not `1.5`, `12.34` or `1234.567`). Returns the length
 * written (at most e − s), or −1 when the points are not such groups; the rest is left to isNumeric.
 */
export function pointDecimal(b: Uint8Array, s: number, e: number, out: Uint8Array, at: number): number {
  let i = s;
  let o = at;
  if (i < e && (b[i] === MINUS || b[i] === PLUS)) out[o++] = b[i++]!;
  let digits = 0;
  let group = -1; // digits since the last point; -1 before the first
  for (; i < e; i++) {
    const c = b[i]!;
    if (isDigit(c)) {
      out[o++] = c;
      digits++;
      if (group >= 0) group++;
    } else if (c === DOT) {
      if (group === -1 ? digits < 1 || digits > 3 : group !== 3) return -1;
      group = 0;
    } else break;
  }
  if (group !== -1 && group !== 3) return -1;
  for (; i < e; i++) {
    const c = b[i]!;
    if (c === DOT) return -1;
    out[o++] = c === COMMA ? DOT : c;
  }
  return o - at;
}
