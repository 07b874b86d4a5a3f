// In-place value checks on bytes [s, e) of an already trimmed value. Each accepts a strict
// subset of what the PostgreSQL input function accepts, so a value passing here cannot abort
// the COPY — and no JS string is created for it.

const D0 = 0x30;
const D9 = 0x39;
const MINUS = 0x2d;
const PLUS = 0x2b;
const DOT = 0x2e;
const COLON = 0x3a;

/** 1 for 0-9 a-f A-F. */
const HEX = new Uint8Array(256);
for (const ch of '0123456789abcdefABCDEF') HEX[ch.charCodeAt(0)] = 1;

const isDigit = (c: number): boolean => c >= D0 && c <= D9;

/** Canonical 8-4-4-4-12 hex form (either case). */
export function isUuid(b: Uint8Array, s: number, e: number): boolean {
  if (e - s !== 36) return false;
  for (let i = 0; i < 36; i++) {
    const c = b[s + i]!;
    if (i === 8 || i === 13 || i === 18 || i === 23) {
      if (c !== MINUS) return false;
    } else if (HEX[c] === 0) return false;
  }
  return true;
}

export const INT_OK = 0;
export const INT_INVALID = 1;
export const INT_OUT_OF_RANGE = 2;

/** Largest magnitudes as digit strings: JS numbers lose precision beyond 2^53, so compare digits. */
export const INT4_LIMITS = { pos: Buffer.from('2147483647'), neg: Buffer.from('2147483648') };
export const INT8_LIMITS = { pos: Buffer.from('9223372036854775807'), neg: Buffer.from('9223372036854775808') };

/** `[+-]?[0-9]+` within the limits. */
export function checkInteger(b: Uint8Array, s: number, e: number, limits: { pos: Buffer; neg: Buffer }): number {
  let i = s;
  const negative = b[i] === MINUS;
  if (negative || b[i] === PLUS) i++;
  if (i >= e) return INT_INVALID;
  for (let j = i; j < e; j++) if (!isDigit(b[j]!)) return INT_INVALID;
  while (i < e - 1 && b[i] === D0) i++; // leading zeros do not count
  const limit = negative ? limits.neg : limits.pos;
  const n = e - i;
  if (n < limit.length) return INT_OK;
  if (n > limit.length) return INT_OUT_OF_RANGE;
  for (let j = 0; j < n; j++) {
    const d = b[i + j]! - limit[j]!;
    if (d !== 0) return d < 0 ? INT_OK : INT_OUT_OF_RANGE;
  }
  return INT_OK;
}

/** Caps that keep a number inside PostgreSQL numeric's limits (exponent ±1000, scale ≤ 16383,
 * weight ≤ 131072 digits) whatever its shape; far beyond any real value. */
export const NUMERIC_MAX_DIGITS = 1000;
export const NUMERIC_MAX_EXPONENT = 1000;

/** `[+-]?(digits[.digits?] | .digits)([eE][+-]?digits)?` — no NaN/Infinity (not numeric in every
 * server version), no underscores or hex (PostgreSQL 16+ only). */
export function isNumeric(b: Uint8Array, s: number, e: number): boolean {
  let i = s;
  if (b[i] === MINUS || b[i] === PLUS) i++;
  let digits = 0;
  while (i < e && isDigit(b[i]!)) {
    i++;
    digits++;
  }
  if (i < e && b[i] === DOT) {
    i++;
    while (i < e && isDigit(b[i]!)) {
      i++;
      digits++;
    }
  }
  if (digits === 0 || digits > NUMERIC_MAX_DIGITS) return false;
  if (i === e) return true;
  if ((b[i]! | 0x20) !== 0x65) return false; // e / E
  i++;
  if (b[i] === MINUS || b[i] === PLUS) i++;
  if (i >= e) return false;
  let exponent = 0;
  for (; i < e; i++) {
    const c = b[i]!;
    if (!isDigit(c)) return false;
    exponent = exponent * 10 + (c - D0);
    if (exponent > NUMERIC_MAX_EXPONENT) return false;
  }
  return true;
}

/** true/false/t/f/1/0/yes/no, any case (all accepted by PostgreSQL's boolin). */
export function isBoolean(b: Uint8Array, s: number, e: number): boolean {
  const n = e - s;
  const lower = (k: number): number => b[s + k]! | 0x20; // only compared against letters
  switch (n) {
    case 1: {
      const c = b[s]!;
      return c === 0x31 || c === D0 || lower(0) === 0x74 || lower(0) === 0x66;
    }
    case 2:
      return lower(0) === 0x6e && lower(1) === 0x6f; // no
    case 3:
      return lower(0) === 0x79 && lower(1) === 0x65 && lower(2) === 0x73; // yes
    case 4:
      return lower(0) === 0x74 && lower(1) === 0x72 && lower(2) === 0x75 && lower(3) === 0x65; // true
    case 5:
      return lower(0) === 0x66 && lower(1) === 0x61 && lower(2) === 0x6c && lower(3) === 0x73 && lower(4) === 0x65;
    default:
      return false;
  }
}

/** Value of `n` ASCII digits at `p`, or -1 if any is not a digit. */
function digitsAt(b: Uint8Array, p: number, n: number): number {
  let v = 0;
  for (let k = 0; k < n; k++) {
    const c = b[p + k]! - D0;
    if (c < 0 || c > 9) return -1;
    v = v * 10 + c;
  }
  return v;
}

const DAYS_IN_MONTH = [0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** `YYYY-MM-DD` at b[p..p+10): a real (proleptic Gregorian) date, year 0001–9999. */
export function isDateAt(b: Uint8Array, p: number): boolean {
  if (b[p + 4] !== MINUS || b[p + 7] !== MINUS) return false;
  const y = digitsAt(b, p, 4);
  const m = digitsAt(b, p + 5, 2);
  const d = digitsAt(b, p + 8, 2);
  if (y < 1 || m < 1 || m > 12 || d < 1) return false;
  if (d <= DAYS_IN_MONTH[m]!) return true;
  return m === 2 && d === 29 && y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0);
}

export function isDate(b: Uint8Array, s: number, e: number): boolean {
  return e - s === 10 && isDateAt(b, s);
}

/** Fraction digits accepted after the seconds (nanoseconds; PostgreSQL rounds to microseconds). */
const MAX_FRACTION_DIGITS = 9;
/** PostgreSQL rejects UTC offsets beyond ±15:59. */
const MAX_OFFSET_HOURS = 15;

/** ISO 8601 `YYYY-MM-DD[T ]HH:MM[:SS[.fraction]][Z|±HH[:MM]|±HHMM]`, every field in range
 * (seconds ≤ 59: no leap second). Without an offset PostgreSQL uses the session TimeZone. */
export function isTimestamp(b: Uint8Array, s: number, e: number): boolean {
  return e - s >= 16 && isDateAt(b, s) && isTimeAfterDate(b, s, e);
}

/** The part of isTimestamp after the date at b[s, s+10): `[T ]HH:MM…` to e (e − s ≥ 16). */
export function isTimeAfterDate(b: Uint8Array, s: number, e: number): boolean {
  const sep = b[s + 10];
  if (sep !== 0x54 && sep !== 0x20) return false; // 'T' or ' '
  const hh = digitsAt(b, s + 11, 2);
  const mi = digitsAt(b, s + 14, 2);
  if (b[s + 13] !== COLON || hh < 0 || hh > 23 || mi < 0 || mi > 59) return false;
  let p = s + 16;
  if (p < e && b[p] === COLON) {
    if (p + 3 > e) return false;
    const ss = digitsAt(b, p + 1, 2);
    if (ss < 0 || ss > 59) return false;
    p += 3;
    if (p < e && b[p] === DOT) {
      const f = ++p;
      while (p < e && isDigit(b[p]!)) p++;
      if (p === f || p - f > MAX_FRACTION_DIGITS) return false;
    }
  }
  if (p === e) return true;
  const c = b[p];
  if (c === 0x5a) return p + 1 === e; // 'Z'
  if (c !== PLUS && c !== MINUS) return false;
  const rest = e - p - 1;
  const oh = rest >= 2 ? digitsAt(b, p + 1, 2) : -1;
  if (oh < 0 || oh > MAX_OFFSET_HOURS) return false;
  if (rest === 2) return true;
  let q = p + 3;
  if (rest === 5) {
    if (b[q] !== COLON) return false;
    q++;
  } else if (rest !== 4) return false;
  const om = digitsAt(b, q, 2);
  return om >= 0 && om <= 59;
}

/**
 * numeric(precision, scale): does a value that passed isNumeric fit? PostgreSQL rounds it to `scale`
 * digits after the point (half away from zero) and refuses it when the rounded absolute value is
 * ≥ 10^(precision − scale). Decided on the digits, without floating point.
 */
export function numericFits(b: Uint8Array, s: number, e: number, precision: number, scale: number): boolean {
  let i = s;
  if (b[i] === MINUS || b[i] === PLUS) i++;
  // Digits without leading zeros: d = b[first…] skipping the point; `point` = digits before the point.
  let point = 0;
  let seenPoint = false;
  let first = -1;
  let digitsEnd = i;
  for (; i < e; i++) {
    const c = b[i]!;
    if (c === DOT) {
      seenPoint = true;
      continue;
    }
    if (!isDigit(c)) break;
    digitsEnd = i + 1;
    if (first < 0) {
      if (c === D0) {
        if (seenPoint) point--;
        continue;
      }
      first = i;
    }
    if (!seenPoint) point++;
  }
  if (first < 0) return true; // zero
  if (i < e) {
    // exponent (isNumeric checked its form and bound)
    i++;
    let negative = false;
    if (b[i] === MINUS || b[i] === PLUS) negative = b[i++] === MINUS;
    let exponent = 0;
    for (; i < e; i++) exponent = exponent * 10 + (b[i]! - D0);
    point += negative ? -exponent : exponent;
  }
  // Digit k (0-based) of the significant digits, skipping the point.
  const digits: number[] = [];
  for (let j = first; j < digitsEnd; j++) if (b[j] !== DOT) digits.push(b[j]! - D0);
  const keep = point + scale; // significant digits left after rounding to `scale`
  let intDigits = Math.max(point, 0);
  if (keep < 0) return true; // rounds to zero
  if (keep < digits.length && digits[keep]! >= 5) {
    // Rounding up carries into a new leading digit only when every kept digit is 9.
    let allNines = true;
    for (let k = 0; k < keep; k++) if (digits[k] !== 9) allNines = false;
    if (allNines) intDigits = Math.max(point + 1, 0);
  } else if (keep === 0) {
    return true; // rounds to zero
  }
  return intDigits <= precision - scale;
}
