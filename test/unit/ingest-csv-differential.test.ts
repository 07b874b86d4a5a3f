// Differential test: the transform's reading of a file must equal the reference's (test/helpers/
// csv-reference.ts: csv-parse for the records, simple independent checks for the values): the same
// per-line outcome (loaded, or rejected with the same code), and the loaded rows, read back from the
// COPY output as PostgreSQL would, equal to csv-parse's values after the documented cleaning (trim,
// blank → NULL, unknown columns dropped).

import { describe, expect, it } from 'vitest';
import { webhookEvents } from '../../src/ingest/datasets/index.ts';
import { referenceLoad, transformLoad, type Outcome } from '../helpers/csv-reference.ts';
import { generateCsv } from '../helpers/generate.ts';
import { parse } from 'csv-parse/sync';

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

async function expectAgreement(input: Buffer): Promise<Outcome> {
  const expected = referenceLoad(input, webhookEvents);
  expect(expected.failure).toBeNull();
  for (const chunkSize of [65536, 1 + rnd(5000)]) {
    const got = await transformLoad(input, webhookEvents, chunkSize);
    expect(got.failure).toBeNull();
    expect(got.lines).toEqual(expected.lines);
    expect(got.rows.length).toBe(expected.rows.length);
    for (let i = 0; i < got.rows.length; i++) if (JSON.stringify(got.rows[i]) !== JSON.stringify(expected.rows[i])) expect(got.rows[i]).toEqual(expected.rows[i]);
  }
  return expected;
}

const rejectsOf = (o: Outcome) => [...o.lines.values()].filter((v) => v !== 'loaded');

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
    expect(rejectsOf(expected)).toEqual([]);
    expect(expected.rows).toHaveLength(ROWS);
    const { out } = await transformLoad(generated, webhookEvents, 65536);
    const lines = generated.toString().split('\n').slice(1, -1);
    expect(out.toString()).toBe(lines.map((l, i) => `${i + 2},${l}\n`).join(''));
  });

  it('a mutated file: quoting, blanks, CRLF, bad values, field counts, bad UTF-8 and NUL', async () => {
    const names = webhookEvents.columns.map((c) => c.name);
    const expected = await expectAgreement(mutatedFile(names, names.map((_, i) => i), -1));
    expect(rejectsOf(expected).length).toBeGreaterThan(ROWS / 20);
    expect(new Set(rejectsOf(expected)).size).toBeGreaterThanOrEqual(11);
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
