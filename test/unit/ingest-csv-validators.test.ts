import { describe, expect, it } from 'vitest';
import { checkJsonb } from '../../src/ingest/csv/json.ts';
import { isJsonb } from '../../src/ingest/csv/json-bytes.ts';
import {
  checkInteger,
  INT4_LIMITS,
  INT8_LIMITS,
  INT_INVALID,
  INT_OK,
  INT_OUT_OF_RANGE,
  isBoolean,
  isDate,
  isNumeric,
  numericFits,
  isTimestamp,
  isUuid,
} from '../../src/ingest/csv/validate.ts';

// Each check runs on a slice in the middle of a larger buffer, as it does in the transform,
// so a check reading outside [s, e) would show up.
function onBytes<T>(fn: (b: Uint8Array, s: number, e: number) => T): (v: string) => T {
  return (v) => {
    const b = Buffer.from(`1"x,${v},9"\n`);
    return fn(b, 4, b.length - 4);
  };
}

const uuid = onBytes(isUuid);
const int4 = onBytes((b, s, e) => checkInteger(b, s, e, INT4_LIMITS));
const int8 = onBytes((b, s, e) => checkInteger(b, s, e, INT8_LIMITS));
const numeric = onBytes(isNumeric);
const bool = onBytes(isBoolean);
const date = onBytes(isDate);
const ts = onBytes(isTimestamp);

describe('uuid', () => {
  it.each(['98ebcb82-034f-4ba5-a41e-dd74d0cfc15a', '98EBCB82-034F-4BA5-A41E-DD74D0CFC15A', '00000000-0000-0000-0000-000000000000'])('accepts %s', (v) => {
    expect(uuid(v)).toBe(true);
  });
  it.each(['98ebcb82-034f-4ba5-a41e-dd74d0cfc15', '98ebcb82-034f-4ba5-a41e-dd74d0cfc15ab', '98ebcb82_034f-4ba5-a41e-dd74d0cfc15a', 'g8ebcb82-034f-4ba5-a41e-dd74d0cfc15a', '98ebcb82034f4ba5a41edd74d0cfc15a', '{98ebcb82-034f-4ba5-a41e-dd74d0cfc15}'])('rejects %s', (v) => {
    expect(uuid(v)).toBe(false);
  });
});

describe('integers (digit-string range checks, no float precision loss)', () => {
  it.each([
    ['0', INT_OK], ['-0', INT_OK], ['+42', INT_OK], ['2147483647', INT_OK], ['-2147483648', INT_OK],
    ['00000000002147483647', INT_OK], ['2147483648', INT_OUT_OF_RANGE], ['-2147483649', INT_OUT_OF_RANGE],
    ['99999999999', INT_OUT_OF_RANGE], ['1.0', INT_INVALID], ['1e3', INT_INVALID], ['', INT_INVALID], ['-', INT_INVALID],
    ['+', INT_INVALID], ['1 2', INT_INVALID], ['0x10', INT_INVALID], ['１', INT_INVALID],
  ])('int4 %j → %i', (v, r) => {
    expect(int4(v)).toBe(r);
  });
  it.each([
    ['9223372036854775807', INT_OK], ['-9223372036854775808', INT_OK], ['9223372036854775808', INT_OUT_OF_RANGE],
    ['-9223372036854775809', INT_OUT_OF_RANGE], ['9223372036854775806', INT_OK], ['10000000000000000000', INT_OUT_OF_RANGE],
    ['9007199254740993', INT_OK], ['-000009223372036854775808', INT_OK], ['9300000000000000000', INT_OUT_OF_RANGE],
  ])('int8 %j → %i', (v, r) => {
    expect(int8(v)).toBe(r);
  });
});

describe('numeric', () => {
  it.each(['0', '-1', '+1.5', '.5', '5.', '1e10', '1E-1000', '-2.5e+3', '1'.repeat(1000)])('accepts %s', (v) => {
    expect(numeric(v)).toBe(true);
  });
  it.each(['', '.', '-', 'e5', '1e', '1e+', '1e1001', '1.2.3', 'NaN', 'Infinity', '1_000', '0x1f', '1'.repeat(1001), '1 ', '$1'])('rejects %j', (v) => {
    expect(numeric(v)).toBe(false);
  });
});

describe('boolean', () => {
  it.each(['true', 'FALSE', 'True', 't', 'F', '1', '0', 'yes', 'NO', 'Yes'])('accepts %s', (v) => {
    expect(bool(v)).toBe(true);
  });
  it.each(['', 'y', 'n', 'on', 'off', '2', 'tru', 'truee', 'yess', 'nope', ' t'])('rejects %j', (v) => {
    expect(bool(v)).toBe(false);
  });
});

describe('date', () => {
  it.each(['2025-01-31', '2024-02-29', '2000-02-29', '0001-01-01', '9999-12-31'])('accepts %s', (v) => {
    expect(date(v)).toBe(true);
  });
  it.each(['2025-02-29', '1900-02-29', '2025-04-31', '2025-13-01', '2025-00-10', '2025-01-00', '0000-01-01', '2025-1-01', '2025/01/01', '20250101', '2025-01-01T00:00'])('rejects %s', (v) => {
    expect(date(v)).toBe(false);
  });
});

describe('timestamptz', () => {
  it.each([
    '2025-01-01T00:00:00.000Z', '2025-01-01 00:00', '2025-01-01T23:59:59', '2025-01-01T10:00:00+05:30', '2025-01-01T10:00-05',
    '2025-01-01T10:00:00.123456789-0800', '2024-02-29T12:00:00Z', '0001-01-01T00:00:00Z', '9999-12-31T23:59:59.999999+15:59',
  ])('accepts %s', (v) => {
    expect(ts(v)).toBe(true);
  });
  it.each([
    '2025-01-01', '2025-02-30T00:00:00Z', '2025-01-01T24:00:00Z', '2025-01-01T12:60', '2025-01-01T12:00:60', '2025-01-01T12:00:00.',
    '2025-01-01T12:00:00.1234567890', '2025-01-01T12:00:00+16:00', '2025-01-01T12:00:00+05:60', '2025-01-01T12:00:00+5',
    '2025-01-01T12:00:00+05:3', '2025-01-01T12:00:00Z ', '2025-01-01T12:00:00ZZ', '2025-01-01X12:00', '2025-01-01T1:00',
    '0000-01-01T00:00:00Z', '2025-01-01T12:00:00 UTC', '2025-01-01T12:00:00+05:30:00', '2025-01-01T12', 'yesterday',
  ])('rejects %s', (v) => {
    expect(ts(v)).toBe(false);
  });
});

// isJsonb works on the CSV bytes (quotes doubled inside a quoted field); checkJsonb is the
// straightforward reference: JSON.parse plus PostgreSQL's extra rules.
function jsonAgrees(text: string): { bytes: boolean; reference: boolean } {
  const inner = text.replaceAll('"', '""');
  const b = Buffer.from(`x,"${inner}",y`);
  const escaped = inner !== text;
  return { bytes: isJsonb(b, 3, 3 + Buffer.byteLength(inner), escaped ? 2 : 1), reference: checkJsonb(text) === null };
}

describe('jsonb', () => {
  it.each([
    '{}', '[]', '0', '-0', '1.5e-3', '"s"', 'null', 'true', 'false', ' {"a": [1, {"b": null}], "c": "x\\"y"} ', '{"k":"\\ud83d\\ude00"}',
    '{"k":"\\u00e9\\n\\t\\/\\\\\\b\\f\\r"}', '[1e1000]', '"é😀"', '[[[[]]]]', '{"a":1,"a":2}', '\t\r\n[1]\n',
  ])('accepts %s', (text) => {
    expect(jsonAgrees(text)).toEqual({ bytes: true, reference: true });
  });
  it.each([
    '', ' ', '{', '[1,]', '{"a":1,}', '{a:1}', "{'a':1}", '01', '1.', '.5', '+1', '1e', '--1', 'NaN', 'Infinity', 'tru', 'nul',
    '"\\u0000"', '"\\ud800"', '"\\udc00"', '"\\ud800x"', '"\\ud800\\u0041"', '"\\uD83D\\uD83D"', '"\\x41"', '"\\u12G4"', '"a\tb"',
    '[1e1001]', `[${'9'.repeat(1001)}]`, '{"a" 1}', '[1 2]', '{} {}', '[}', '{]', '"unterminated', '[' .repeat(1001) + ']'.repeat(1001),
  ])('rejects %j', (text) => {
    expect(jsonAgrees(text)).toEqual({ bytes: false, reference: false });
  });

  it('agrees with JSON.parse + PostgreSQL rules on 20,000 random mutations', () => {
    let seed = 7;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return (seed >>> 8) % n; // an LCG's low bits cycle quickly
    };
    let accepted = 0;
    const seeds = ['{"note":"order 1, \\"gift\\" wrap","items":3,"tags":["a","b"]}', '[1,-2.5e3,true,false,null,{"k":"\\u00e9"}]', '{"a":{"b":[0.1,"\\ud83d\\ude00"]}}'];
    const alphabet = ['"', '\\', 'u', '0', 'd', '8', 'e', 'E', '-', '+', '.', ',', ':', '{', '}', '[', ']', ' ', '\n', 'a', 't', 'n', '1', '\u0001', 'é'];
    for (let n = 0; n < 20000; n++) {
      const chars = [...seeds[rnd(seeds.length)]!];
      for (let m = 1 + rnd(3); m > 0; m--) {
        const at = rnd(chars.length + 1);
        const op = rnd(3);
        if (op === 0) chars.splice(at, 1);
        else if (op === 1) chars.splice(at, 0, alphabet[rnd(alphabet.length)]!);
        else chars.splice(at, 1, alphabet[rnd(alphabet.length)]!);
      }
      const text = chars.join('');
      const r = jsonAgrees(text);
      if (r.bytes !== r.reference) throw new Error(`disagreement on ${JSON.stringify(text)}: ${JSON.stringify(r)}`);
      if (r.reference) accepted++;
    }
    expect(accepted).toBeGreaterThan(1000); // both outcomes well represented
    expect(accepted).toBeLessThan(19000);
  });
});

describe('numeric(p,s) range after PostgreSQL rounding', () => {
  const fits = (p: number, s: number) => onBytes((b, st, e) => numericFits(b, st, e, p, s));
  it.each([
    ['99.99', 4, 2, true], ['99.994', 4, 2, true], ['99.995', 4, 2, false], ['-99.995', 4, 2, false], ['100', 4, 2, false],
    ['0.995', 2, 2, false], ['0.994', 2, 2, true], ['.5', 1, 0, true], ['9.5', 1, 0, false], ['0.000001', 1, 1, true],
    ['1e3', 4, 0, true], ['1e4', 4, 0, false], ['12345e-3', 3, 1, true], ['99950e-3', 3, 1, false], ['0', 1, 1, true],
    ['000123.4500', 5, 2, true], ['-0.0', 1, 0, true], ['999999.995', 8, 2, false], ['999999.994', 8, 2, true],
  ])('%s in numeric(%i,%i) fits: %s', (v, p, s, expected) => {
    expect(numeric(v)).toBe(true);
    expect(fits(p, s)(v)).toBe(expected);
  });
});
