// Values written in a file's own spelling (src/ingest/csv/input-format.ts), turned into what PostgreSQL's
// COPY reads whatever its DateStyle and locale: ISO 8601 dates (YYYY-MM-DD) and a decimal point. Every
// spelling has the length of its ISO form, so a converted value is as long as the original and a
// record's output never grows. Byte work only: no JS string per value.
import type { DateFormat } from './input-format.ts';

const MINUS = 0x2d;
export const DOT = 0x2e;
export const COMMA = 0x2c;

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

/** Copies b[s, e) to out[at…] with its decimal comma (at most one, validated) as a point. Returns e − s. */
export function pointDecimal(b: Uint8Array, s: number, e: number, out: Uint8Array, at: number): number {
  for (let i = s; i < e; i++) {
    const c = b[i]!;
    out[at + i - s] = c === COMMA ? DOT : c;
  }
  return e - s;
}
