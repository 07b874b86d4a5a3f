// jsonb check straight on the CSV bytes — the JSON column is the costliest per row, and
// decoding + unescaping + JSON.parse + a limits pass was half of the transform's CPU time.
//
// Accepts exactly RFC 8259 JSON (what JSON.parse accepts — the tests fuzz it against
// checkJsonb in json.ts) minus what PostgreSQL jsonb rejects: \u0000, unpaired surrogate
// escapes, numbers beyond numeric's limits, nesting deeper than JSON_MAX_DEPTH.
// The bytes are already known to be valid UTF-8 without NUL. Inside a quoted CSV field every
// `"` is doubled, so a JSON quote is `quoteWidth` (2) bytes there and 1 elsewhere.

import { JSON_MAX_DEPTH } from './json.ts';
import { NUMERIC_MAX_DIGITS, NUMERIC_MAX_EXPONENT } from './validate.ts';

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const IN_ARRAY = 1;
const IN_OBJECT = 2;

/** 1 for the characters allowed after a backslash, other than u. */
const SIMPLE_ESCAPE = new Uint8Array(256);
for (const ch of '"\\/bfnrt') SIMPLE_ESCAPE[ch.charCodeAt(0)] = 1;
/** Hex digit value + 1 (0: not a hex digit). */
const HEX1 = new Uint8Array(256);
for (let d = 0; d < 16; d++) {
  HEX1['0123456789abcdef'.charCodeAt(d)] = d + 1;
  HEX1['0123456789ABCDEF'.charCodeAt(d)] = d + 1;
}

const stack = new Uint8Array(JSON_MAX_DEPTH + 1);

/** True if b[s, e) is a JSON text PostgreSQL stores as jsonb. */
export function isJsonb(b: Uint8Array, s: number, e: number, quoteWidth: number): boolean {
  let depth = 0;
  let i = skipWs(b, s, e);
  for (;;) {
    // Expecting a value at i.
    if (i >= e) return false;
    let c = b[i]!;
    if (c === 0x7b || c === 0x5b) {
      if (depth === JSON_MAX_DEPTH) return false;
      i = skipWs(b, i + 1, e);
      if (c === 0x7b) {
        stack[++depth] = IN_OBJECT;
        if (b[i] === 0x7d && i < e) {
          i++;
        } else {
          i = objectKey(b, i, e, quoteWidth);
          if (i < 0) return false;
          continue;
        }
      } else {
        stack[++depth] = IN_ARRAY;
        if (b[i] === 0x5d && i < e) i++;
        else continue;
      }
      depth--; // empty container: itself a complete value
    } else {
      if (c === QUOTE) i = string(b, i + quoteWidth, e, quoteWidth);
      else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) i = number(b, i, e);
      else if (c === 0x74) i = literal(b, i, e, 'true');
      else if (c === 0x66) i = literal(b, i, e, 'false');
      else if (c === 0x6e) i = literal(b, i, e, 'null');
      else return false;
      if (i < 0) return false;
    }
    // After a complete value: close containers or move to the next member.
    for (;;) {
      i = skipWs(b, i, e);
      if (depth === 0) return i === e;
      if (i >= e) return false;
      c = b[i]!;
      const inObject = stack[depth] === IN_OBJECT;
      if (c === 0x2c) {
        i = skipWs(b, i + 1, e);
        if (inObject) {
          i = objectKey(b, i, e, quoteWidth);
          if (i < 0) return false;
        }
        break;
      }
      if (c !== (inObject ? 0x7d : 0x5d)) return false;
      depth--;
      i++;
    }
  }
}

function skipWs(b: Uint8Array, i: number, e: number): number {
  while (i < e) {
    const c = b[i]!;
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
    i++;
  }
  return i;
}

/** `"key"` ws `:` ws at i; returns the index of the member's value, or -1. */
function objectKey(b: Uint8Array, i: number, e: number, quoteWidth: number): number {
  if (i >= e || b[i] !== QUOTE) return -1;
  i = string(b, i + quoteWidth, e, quoteWidth);
  if (i < 0) return -1;
  i = skipWs(b, i, e);
  if (i >= e || b[i] !== 0x3a) return -1;
  return skipWs(b, i + 1, e);
}

function hex4(b: Uint8Array, i: number, e: number): number {
  if (i + 4 > e) return -1;
  const h0 = HEX1[b[i]!]!;
  const h1 = HEX1[b[i + 1]!]!;
  const h2 = HEX1[b[i + 2]!]!;
  const h3 = HEX1[b[i + 3]!]!;
  if (h0 === 0 || h1 === 0 || h2 === 0 || h3 === 0) return -1;
  return ((h0 - 1) << 12) | ((h1 - 1) << 8) | ((h2 - 1) << 4) | (h3 - 1);
}

/** String body from i (after the opening quote); returns the index after the closing quote. */
function string(b: Uint8Array, i: number, e: number, quoteWidth: number): number {
  while (i < e) {
    const c = b[i]!;
    if (c === QUOTE) return i + quoteWidth;
    if (c < 0x20) return -1; // raw control characters are not allowed in JSON strings
    if (c !== BACKSLASH) {
      i++;
      continue;
    }
    const x = b[i + 1];
    if (i + 1 >= e || x === undefined) return -1;
    if (x === QUOTE) {
      i += 1 + quoteWidth;
    } else if (SIMPLE_ESCAPE[x] === 1) {
      i += 2;
    } else if (x === 0x75) {
      const unit = hex4(b, i + 2, e);
      if (unit <= 0 || (unit >= 0xdc00 && unit <= 0xdfff)) return -1; // invalid, \u0000, lone low
      i += 6;
      if (unit >= 0xd800 && unit <= 0xdbff) {
        // PostgreSQL requires the low half as the very next escape.
        if (b[i] !== BACKSLASH || b[i + 1] !== 0x75 || i + 1 >= e) return -1;
        const low = hex4(b, i + 2, e);
        if (low < 0xdc00 || low > 0xdfff) return -1;
        i += 6;
      }
    } else {
      return -1;
    }
  }
  return -1;
}

/** `-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?` within numeric's limits; returns the end or -1. */
function number(b: Uint8Array, i: number, e: number): number {
  if (b[i] === 0x2d) i++;
  const intStart = i;
  while (i < e && b[i]! >= 0x30 && b[i]! <= 0x39) i++;
  let digits = i - intStart;
  if (digits === 0 || (digits > 1 && b[intStart] === 0x30)) return -1;
  if (i < e && b[i] === 0x2e) {
    const f = ++i;
    while (i < e && b[i]! >= 0x30 && b[i]! <= 0x39) i++;
    if (i === f) return -1;
    digits += i - f;
  }
  if (digits > NUMERIC_MAX_DIGITS) return -1;
  if (i < e && (b[i]! | 0x20) === 0x65) {
    i++;
    if (i < e && (b[i] === 0x2b || b[i] === 0x2d)) i++;
    const x = i;
    let exponent = 0;
    while (i < e && b[i]! >= 0x30 && b[i]! <= 0x39) {
      exponent = exponent * 10 + (b[i]! - 0x30);
      if (exponent > NUMERIC_MAX_EXPONENT) return -1;
      i++;
    }
    if (i === x) return -1;
  }
  return i;
}

function literal(b: Uint8Array, i: number, e: number, word: string): number {
  if (i + word.length > e) return -1;
  for (let k = 0; k < word.length; k++) if (b[i + k] !== word.charCodeAt(k)) return -1;
  return i + word.length;
}
