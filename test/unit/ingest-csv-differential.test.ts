// Differential test: the transform's COPY output, parsed back with csv-parse, must equal
// csv-parse's own reading of the input after the documented cleaning (trim, blank → NULL,
// rejected rows dropped, unknown columns dropped); and the rejected (line, code) pairs must be
// exactly what a simple independent validator (csv-parse + regexes / BigInt / JSON.parse) rejects.

import { isUtf8 } from 'node:buffer';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parse } from 'csv-parse/sync';
import { describe, expect, it } from 'vitest';
import { createCopyTransform, type Reject } from '../../src/ingest/csv/index.ts';
import type { ColumnDef } from '../../src/ingest/datasets/types.ts';
import { webhookEvents } from '../../src/ingest/datasets/index.ts';
import { generateCsv } from '../helpers/generate.ts';

const ROWS = 20000;
const generated: Buffer = generateCsv(ROWS);

// mulberry32: small, seeded, and (unlike a bare LCG's low bits) fine for `% n`.
let seed = 2024;
const rnd = (n: number): number => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) % n;
};
const pick = <T>(xs: readonly T[]): T => xs[rnd(xs.length)]!;

// ---- reference: csv-parse + straightforward checks --------------------------------------

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const TS = /^(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d)(?::(\d\d)(?:\.\d{1,9})?)?(?:Z|[+-](\d\d)(?::?(\d\d))?)?$/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function realDate(y: number, m: number, d: number): boolean {
  const t = new Date(0);
  t.setUTCFullYear(y, m - 1, d);
  return y >= 1 && t.getUTCFullYear() === y && t.getUTCMonth() === m - 1 && t.getUTCDate() === d;
}

function jsonbOk(v: string): boolean {
  let ok = true;
  const visit = (x: unknown): void => {
    if (typeof x === 'string') ok &&= !x.includes('\u0000') && !LONE_SURROGATE.test(x);
    else if (x && typeof x === 'object') for (const [k, y] of Object.entries(x)) (visit(k), visit(y));
  };
  try {
    visit(JSON.parse(v));
  } catch {
    return false;
  }
  return ok;
}

function referenceCheck(c: ColumnDef, v: string): string | null {
  switch (c.type) {
    case 'uuid':
      return UUID.test(v) ? null : 'invalid_uuid';
    case 'bigint': {
      if (!/^[+-]?\d+$/.test(v)) return 'invalid_integer';
      const n = BigInt(v);
      return n >= -(2n ** 63n) && n < 2n ** 63n ? null : 'out_of_range';
    }
    case 'timestamptz': {
      const m = TS.exec(v);
      if (!m) return 'invalid_timestamp';
      const [, y, mo, d, h, mi, s, oh, om] = m.map((x) => (x === undefined ? 0 : Number(x)));
      const ok = realDate(y!, mo!, d!) && h! <= 23 && mi! <= 59 && s! <= 59 && oh! <= 15 && om! <= 59;
      return ok ? null : 'invalid_timestamp';
    }
    case 'jsonb':
      return jsonbOk(v) ? null : 'invalid_json';
    case 'text':
      if (c.maxLength !== undefined && [...v].length > c.maxLength) return 'too_long';
      if (c.pattern && !c.pattern.test(v)) return 'pattern';
      return null;
    default:
      throw new Error(`reference does not cover ${c.type}`);
  }
}

interface Expected {
  rows: (string | null)[][];
  rejects: [number, string][];
}

function reference(input: Buffer): Expected {
  const body = input[0] === 0xef && input[1] === 0xbb && input[2] === 0xbf ? input.subarray(3) : input;
  // latin1 maps bytes 1:1 to characters, so fields can be turned back into their exact bytes
  // (csv-parse's `encoding: null` trips over relax_column_count).
  const parsed = parse(body, { encoding: 'latin1', relax_column_count: true, skip_empty_lines: true, record_delimiter: ['\r\n', '\n'], raw: true, info: true }) as unknown as { record: string[]; raw: string; info: { bytes: number } }[];
  const records = parsed.map(({ record, raw, info }) => ({ record: record.map((f) => Buffer.from(f, 'latin1')), raw, info }));
  const trim = (b: Buffer): string => b.toString('utf8').replace(/^[ \t]+|[ \t]+$/g, '');
  const header = records[0]!.record.map((b) => webhookEvents.columns.find((c) => c.name === trim(b).toLowerCase()));
  const out: Expected = { rows: [], rejects: [] };
  let line = 1; // = 1 + LFs before `counted`
  let counted = 0;
  for (const { record, raw, info } of records.slice(1)) {
    let start = info.bytes - raw.length;
    while (body[start] === 0x0a || body[start] === 0x0d) start++; // skipped blank lines
    for (; counted < start; counted++) if (body[counted] === 0x0a) line++;
    const reject = (code: string): void => void out.rejects.push([line, code]);
    if (!record.every((b) => isUtf8(b))) { reject('invalid_utf8'); continue; }
    if (record.some((b) => b.includes(0))) { reject('nul_byte'); continue; }
    if (record.length !== header.length) { reject('field_count'); continue; }
    const row: (string | null)[] = [String(line)];
    let code: string | null = null;
    for (let j = 0; j < header.length && code === null; j++) {
      const col = header[j];
      if (!col) continue;
      const v = trim(record[j]!);
      if (v === '') code = col.required ? 'required' : (row.push(null), null);
      else code = referenceCheck(col, v) ?? (row.push(v), null);
    }
    if (code === null) out.rows.push(row);
    else reject(code);
  }
  return out;
}

// ---- the transform, and its output read back as PostgreSQL would -------------------------

async function transform(input: Buffer, chunkSize: number): Promise<{ out: Buffer; rejects: Reject[] }> {
  const rejects: Reject[] = [];
  const out: Buffer[] = [];
  const t = createCopyTransform(webhookEvents, { onHeader: () => {}, onReject: (r) => rejects.push(r), chunkBytes: 64 * 1024 });
  const chunks: Buffer[] = [];
  for (let i = 0; i < input.length; i += chunkSize) chunks.push(input.subarray(i, i + chunkSize));
  await pipeline(Readable.from(chunks), t, new Writable({ write: (c: Buffer, _e, cb) => (out.push(c), cb()) }));
  return { out: Buffer.concat(out), rejects };
}

/** COPY csv semantics: unquoted empty = NULL, quoted = string. The reference never expects ''
 * (blank → NULL), so an output `""` (an empty string for PostgreSQL) would show as a mismatch. */
const readCopy = (out: Buffer): (string | null)[][] =>
  parse(out, { cast: (v: string, ctx: { quoting: boolean }) => (ctx.quoting ? v : v === '' ? null : v) }) as (string | null)[][];

async function expectAgreement(input: Buffer): Promise<Expected> {
  const expected = reference(input);
  for (const chunkSize of [65536, 1 + rnd(5000)]) {
    const { out, rejects } = await transform(input, chunkSize);
    expect(rejects.map((r) => [r.line, r.code])).toEqual(expected.rejects);
    const rows = readCopy(out);
    expect(rows.length).toBe(expected.rows.length);
    for (let i = 0; i < rows.length; i++) if (JSON.stringify(rows[i]) !== JSON.stringify(expected.rows[i])) expect(rows[i]).toEqual(expected.rows[i]);
  }
  return expected;
}

// ---- mutated input ------------------------------------------------------------------------

const BAD: Record<string, readonly string[]> = {
  event_id: ['98ebcb82-034f-4ba5-a41e-dd74d0cfc15', 'not-a-uuid', '98EBCB82-034F-4BA5-A41E-DD74D0CFC15A', '98ebcb82-034f-4ba5-a41e-dd74d0cfc15g'],
  event_type: ['x'.repeat(101), 'é'.repeat(100), 'a,b', 'say "hi"', 'two\nlines', 'cr\r\nlf', '😀'],
  source: ['é', 'with, comma', '"quoted"', 'multi\nline\nvalue'],
  customer_id: ['cus_😀', 'x\r\ny'],
  amount_cents: ['9223372036854775807', '9223372036854775808', '-9223372036854775808', '-9223372036854775809', '1.5', '00042', '+7', '1e3', '12 34'],
  currency: ['usd', 'EURO', 'EU', 'GB1'],
  occurred_at: ['2025-02-29T00:00:00Z', '2024-02-29T00:00:00Z', '2025-01-01 12:00', '2025-01-01T24:00:00Z', '2025-01-01T12:00:00+05:30', '2025-01-01T12:00:00+16:00', '2025-13-01T00:00:00Z', '2025-01-01', '2025-01-01T00:00:00.1234567891Z'],
  payload: ['{bad', '{"a":"\\u0000"}', '[1,2]', '{"a":"\\ud800"}', '{"a":"\\ud83d\\ude00"}', '{\n "a" : 1\r\n}', '{"k":"é \\"q\\" , x"}', 'null', '"str"', '{"a":1,}', '01'],
};

function encodeField(v: string | Buffer, forceQuote: boolean): Buffer {
  const s = typeof v === 'string' ? v : null;
  if (s !== null && (forceQuote || /[",\r\n]/.test(s))) return Buffer.from(`"${s.replaceAll('"', '""')}"`);
  return typeof v === 'string' ? Buffer.from(v) : v;
}

function mutatedFile(headerNames: string[], order: number[], unknownAt: number): Buffer {
  const rows = parse(generated, { from_line: 2 }) as string[][];
  const cols = webhookEvents.columns;
  const parts: Buffer[] = [Buffer.from(`${headerNames.join(',')}\n`)];
  for (const original of rows) {
    let fields: (string | Buffer)[] = order.map((k) => original[k]!);
    const quote = fields.map(() => rnd(8) === 0);
    let resize = false;
    if (rnd(3) === 0) {
      for (let m = 1 + rnd(2); m > 0; m--) {
        const j = rnd(fields.length);
        const name = cols[order[j]!]!.name;
        const v = fields[j];
        if (typeof v !== 'string') continue;
        switch (rnd(8)) {
          case 0: fields[j] = pick([` ${v} `, `\t${v}`, `${v}  `]); break;
          case 1: fields[j] = pick(['', '   ']); quote[j] = rnd(2) === 0; break;
          case 2: case 3: case 4: fields[j] = pick(BAD[name]!); break;
          case 5: resize = rnd(4) === 0; break;
          case 6: fields[j] = Buffer.concat([Buffer.from('bad'), Buffer.from([pick([0xff, 0xc3, 0x00])])]); break;
          default: break;
        }
      }
    }
    if (resize) fields = rnd(2) ? fields.slice(1) : [...fields, 'extra'];
    if (unknownAt >= 0) fields.splice(unknownAt, 0, pick(['note', '', 'a,"b"', 'x\ny']));
    parts.push(Buffer.concat(fields.flatMap((f, j) => [j ? Buffer.from(',') : Buffer.alloc(0), encodeField(f, quote[j] ?? false)])));
    parts.push(Buffer.from(rnd(5) === 0 ? '\r\n' : '\n'));
    if (rnd(200) === 0) parts.push(Buffer.from(pick(['\n', '\r\n'])));
  }
  parts.pop(); // no final newline
  return Buffer.concat(parts);
}

describe('differential against csv-parse', () => {
  it(`the generated file (${ROWS} rows) passes through entirely, byte for byte after the line number`, async () => {
    const expected = await expectAgreement(generated);
    expect(expected.rejects).toEqual([]);
    expect(expected.rows).toHaveLength(ROWS);
    const { out } = await transform(generated, 65536);
    const lines = generated.toString().split('\n').slice(1, -1);
    expect(out.toString()).toBe(lines.map((l, i) => `${i + 2},${l}\n`).join(''));
  });

  it('a mutated file: quoting, blanks, CRLF, bad values, field counts, bad UTF-8 and NUL', async () => {
    const names = webhookEvents.columns.map((c) => c.name);
    const expected = await expectAgreement(mutatedFile(names, names.map((_, i) => i), -1));
    expect(expected.rejects.length).toBeGreaterThan(ROWS / 20);
    expect(new Set(expected.rejects.map(([, code]) => code)).size).toBeGreaterThanOrEqual(11);
  });

  it('a mutated file with BOM, reordered and re-cased header and an unknown column', async () => {
    const order = [6, 0, 7, 2, 1, 5, 4, 3];
    const names = order.map((k) => webhookEvents.columns[k]!.name.toUpperCase());
    names.splice(3, 0, 'Comment');
    names[0] = `\uFEFF ${names[0]} `;
    const expected = await expectAgreement(mutatedFile(names, order, 3));
    expect(expected.rows.length).toBeGreaterThan(ROWS / 2);
  });
});
