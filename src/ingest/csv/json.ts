// jsonb acceptance: JSON.parse checks the grammar; this adds what PostgreSQL's jsonb input
// rejects although JSON.parse accepts it.

import { NUMERIC_MAX_DIGITS, NUMERIC_MAX_EXPONENT } from './validate.ts';

/** The JSON parser of PostgreSQL ≤ 16 recurses per nesting level and can hit max_stack_depth;
 * far deeper than real payloads. */
export const JSON_MAX_DEPTH = 1000;

const BACKSLASH = 0x5c;
const QUOTE = 0x22;

/** null if PostgreSQL jsonb accepts `text`, else the reason. */
export function checkJsonb(text: string): string | null {
  try {
    JSON.parse(text);
  } catch (err) {
    return (err as Error).message;
  }
  return checkPostgresLimits(text);
}

// Assumes `text` is valid JSON (JSON.parse succeeded), which keeps the walk simple.
function checkPostgresLimits(text: string): string | null {
  const n = text.length;
  let depth = 0;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      // Skip the string; look only at \u escapes.
      for (i++; ; i++) {
        const d = text.charCodeAt(i);
        if (d === QUOTE) break;
        if (d !== BACKSLASH) continue;
        i++;
        if (text.charCodeAt(i) !== 0x75) continue; // not \u
        const unit = parseInt(text.slice(i + 1, i + 5), 16);
        i += 4;
        if (unit === 0) return '\\u0000 cannot be stored in jsonb';
        if (unit >= 0xdc00 && unit <= 0xdfff) return 'unpaired Unicode low surrogate escape';
        if (unit >= 0xd800 && unit <= 0xdbff) {
          const low = text.charCodeAt(i + 1) === BACKSLASH && text.charCodeAt(i + 2) === 0x75
            ? parseInt(text.slice(i + 3, i + 7), 16)
            : -1;
          if (!(low >= 0xdc00 && low <= 0xdfff)) return 'unpaired Unicode high surrogate escape';
          i += 6;
        }
      }
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > JSON_MAX_DEPTH) return `nested deeper than ${JSON_MAX_DEPTH} levels`;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    } else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      i = checkNumber(text, i);
      if (i < 0) return 'number out of range for PostgreSQL numeric';
      i--; // the loop's i++ lands on the character after the number
    }
  }
  return null;
}

/** Returns the index after the number starting at i, or -1 if numeric would reject it. */
function checkNumber(text: string, i: number): number {
  let digits = 0;
  let c = text.charCodeAt(i);
  if (c === 0x2d) c = text.charCodeAt(++i);
  while ((c >= 0x30 && c <= 0x39) || c === 0x2e) {
    if (c !== 0x2e) digits++;
    c = text.charCodeAt(++i);
  }
  if (digits > NUMERIC_MAX_DIGITS) return -1;
  if (c !== 0x65 && c !== 0x45) return i;
  c = text.charCodeAt(++i);
  if (c === 0x2b || c === 0x2d) c = text.charCodeAt(++i);
  let exponent = 0;
  while (c >= 0x30 && c <= 0x39) {
    exponent = exponent * 10 + (c - 0x30);
    if (exponent > NUMERIC_MAX_EXPONENT) return -1;
    c = text.charCodeAt(++i);
  }
  return i;
}
