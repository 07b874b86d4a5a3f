// Input formats, as classes: for every delimiter and both quote modes the transform reads random files as
// csv-parse does with the same `delimiter` and `relax_quotes` (test/helpers/csv-reference.ts); for every
// encoding, random text encoded by iconv-lite and decoded before the transform loads exactly as its UTF-8
// form does; and dates / decimal commas reach the COPY output as ISO dates and decimal points.
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import iconv from 'iconv-lite';
import { describe, expect, it } from 'vitest';
import { copyStatement, createCopyTransform, CsvFileError, decoderFor, type Reject } from '../../src/ingest/csv/index.ts';
import { DELIMITERS, normaliseInputFormat, resolveInputFormat, type Encoding, type InputFormat } from '../../src/ingest/csv/input-format.ts';
import type { DatasetDef } from '../../src/ingest/datasets/types.ts';
import { readCopy, referenceLoad, transformLoad } from '../helpers/csv-reference.ts';

// mulberry32, seeded: the same files every run.
let seed = 1010;
const rnd = (n: number): number => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) % n;
};
const pick = <T>(xs: readonly T[]): T => xs[rnd(xs.length)]!;
const word = (alphabet: readonly string[], max: number): string => Array.from({ length: rnd(max + 1) }, () => pick(alphabet)).join('');

const texts: DatasetDef = {
  name: 't',
  table: 't',
  columns: [
    { name: 'a', type: 'text' },
    { name: 'b', type: 'text' },
    { name: 'c', type: 'text', maxLength: 12 },
  ],
};

/**
 * One random field for a file delimited by `d`. Kinds: plain; quoted (any content, doubled quotes, line
 * breaks, the delimiter); unquoted with quotes inside (`5'10"`: malformed when strict, literal when
 * relaxed); a quoted field whose closing quote is followed by more text (`"ab"cd`: malformed / literal).
 * Kept to what csv-parse and RFC 4180 readers agree on (see scan.ts): no blank before an opening quote
 * or after a closing one, and no `""` or CR in a field whose quote does not close it; and, strict, no such
 * field at all (how csv-parse resumes after that error is its own; ingest-csv-accounting.test.ts checks
 * strict corruptions by the lines they cover).
 */
function field(d: string, quotes: 'strict' | 'relaxed'): string {
  const others = DELIMITERS.filter((x) => x !== d && x !== '\t');
  const plain = ['x', 'y', 'Z', '7', 'é', '😀', '°', ...others];
  switch (rnd(10)) {
    case 0:
      return '';
    case 1:
      return `${pick([' ', ''])}${word(plain, 6)}${pick([' ', ''])}`;
    case 2:
    case 3:
      return `"${word([...plain, d, '""', '\n', '\r\n', ' ', "'"], 8)}"`;
    case 4:
      return `${pick(plain.filter((c) => c !== ' '))}${word([...plain, '"', "'"], 5)}"${word(plain, 3)}`;
    case 5:
      if (quotes === 'strict') return word(plain, 4);
      return `"${word([...plain, d, '\n'], 5)}"${pick(['x', '°', "'"])}${word([...plain, '"'], 4)}`;
    default:
      return word(plain, 8);
  }
}

function randomFile(d: string, quotes: 'strict' | 'relaxed', rows: number): Buffer {
  const lines = [['a', 'b', 'c'].join(d)];
  for (let i = 0; i < rows; i++) {
    const n = rnd(12) === 0 ? pick([2, 4]) : 3;
    lines.push(Array.from({ length: n }, () => field(d, quotes)).join(d));
    if (rnd(40) === 0) lines.push('');
  }
  return Buffer.from(lines.map((l) => l + (rnd(5) === 0 ? '\r\n' : '\n')).join(''));
}

describe('every delimiter and both quote modes read as csv-parse reads them', () => {
  const cases = DELIMITERS.flatMap((delimiter) => (['strict', 'relaxed'] as const).map((quotes) => [delimiter, quotes] as const));
  it.each(cases)('delimiter %j, quotes %s: the same outcome for every line, the same values', async (delimiter, quotes) => {
    const format = resolveInputFormat({ delimiter, quotes });
    const input = randomFile(delimiter, quotes, 3000);
    const expected = referenceLoad(input, texts, format);
    expect(expected.failure).toBeNull();
    for (const chunkSize of [65536, 1 + rnd(300)]) {
      const got = await transformLoad(input, texts, chunkSize, format);
      expect(got.failure).toBeNull();
      expect(got.lines).toEqual(expected.lines);
      expect(got.rows).toEqual(expected.rows);
    }
    const outcomes = new Set(expected.lines.values());
    // the file exercises what it should: literal quotes load when relaxed and break the record when strict
    expect(outcomes.has('loaded')).toBe(true);
    expect(outcomes.has('malformed_csv')).toBe(quotes === 'strict');
    expect(outcomes.has('field_count')).toBe(true);
    if (quotes === 'relaxed') expect(expected.rows.some((r) => r.some((v) => v !== null && /^[^"]+"/.test(v)))).toBe(true);
  });
});

/** Runs `input` (in `format`, encoded as `format.encoding`) through the decoder and the transform. */
async function load(dataset: DatasetDef, input: Buffer, format: InputFormat, pieces = 1): Promise<{ out: Buffer; rejects: Reject[] }> {
  const rejects: Reject[] = [];
  const chunks: Buffer[] = [];
  const step = Math.max(1, Math.ceil(input.length / pieces));
  const parts: Buffer[] = [];
  for (let i = 0; i < input.length; i += step) parts.push(input.subarray(i, i + step));
  const decoder = decoderFor(format.encoding);
  const transform = createCopyTransform(dataset, { onHeader: () => {}, onReject: (r) => rejects.push(r), format });
  const sink = new Writable({ write: (c: Buffer, _e, cb) => (chunks.push(c), cb()) });
  await pipeline([Readable.from(parts), ...(decoder ? [decoder] : []), transform, sink]);
  return { out: Buffer.concat(chunks), rejects };
}

// Characters each encoding can hold (beyond ASCII): Latin-1's upper half, Windows-1252's extras, and for
// UTF-16 anything, astral planes included.
const LATIN1 = [...'éèàçñöüßÆøÿ¡¿°±µ©®«»'];
const CP1252 = [...LATIN1, ...'€‚ƒ„…†‡ˆ‰Š‹ŒŽ‘’“”•–—˜™š›œžŸ'];
const UNICODE = [...CP1252, ...'ĀłŐ中文日本語한국어Ωж', '😀', '𝄞', '👍🏽'];

function randomText(alphabet: readonly string[], rows: number): string {
  const letters = [...'abcXYZ09 ', ...alphabet];
  const lines = ['a,b,c'];
  for (let i = 0; i < rows; i++) {
    const v = () => (rnd(4) === 0 ? `"${word([...letters, ',', '""', '\n'], 10)}"` : word(letters, 10).trim());
    lines.push([v(), v(), v()].join(','));
  }
  return lines.join(rnd(2) ? '\r\n' : '\n') + '\n';
}

describe('encodings: random text encoded by iconv-lite loads as its UTF-8 form does', () => {
  const cases: [Encoding, string, readonly string[], boolean][] = [
    ['windows-1252', 'windows-1252', CP1252, false],
    ['latin1', 'latin1', LATIN1, false],
    ['utf-16', 'utf-16le', UNICODE, true],
    ['utf-16', 'utf-16be', UNICODE, true],
  ];
  it.each(cases)('%s (written as %s)', async (encoding, writtenAs, alphabet, bom) => {
    const dataset: DatasetDef = { name: 't', table: 't', columns: texts.columns.map((c) => ({ name: c.name, type: 'text' as const })) };
    for (let round = 0; round < 5; round++) {
      const text = randomText(alphabet, 400);
      const utf8 = await load(dataset, Buffer.from(text, 'utf8'), resolveInputFormat({}));
      const encoded = iconv.encode(text, writtenAs, { addBOM: bom });
      for (const pieces of [1, 7, 997]) {
        const got = await load(dataset, encoded, resolveInputFormat({ encoding }), pieces);
        expect(got.rejects).toEqual(utf8.rejects);
        expect(got.out.equals(utf8.out)).toBe(true);
      }
      // and what was loaded is the text itself, characters outside Latin-1 included
      const values = readCopy(utf8.out).flatMap((r) => r.slice(1)).join('');
      for (const ch of alphabet.filter((c) => text.includes(c))) expect(values).toContain(ch);
    }
  });

  it('utf-16 without a byte order mark fails the file with missing_bom', async () => {
    const format = resolveInputFormat({ encoding: 'utf-16' });
    const err = await load(texts, iconv.encode('a,b,c\n1,2,3\n', 'utf-16le', { addBOM: false }), format).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CsvFileError);
    expect((err as CsvFileError).code).toBe('missing_bom');
  });

  it.each([
    ['windows-1252', Buffer.from('\uFEFFa,b,c\n', 'utf8'), 'encoding utf-8'],
    ['latin1', iconv.encode('a,b,c\n', 'utf-16le', { addBOM: true }), 'encoding utf-16'],
    ['utf-8', iconv.encode('a,b,c\n', 'utf-16be', { addBOM: true }), 'encoding utf-16'],
  ] as const)('a file stated %s whose byte order mark says otherwise fails with bad_header naming the encoding', async (encoding, bytes, hint) => {
    const err = await load(texts, bytes, resolveInputFormat({ encoding })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CsvFileError);
    expect((err as CsvFileError).code).toBe('bad_header');
    expect((err as CsvFileError).message).toContain(hint);
  });

  it('files of a few bytes: a BOM alone is an empty file, two bytes of Latin-1 a header', async () => {
    const bom = await load(texts, Buffer.from([0xff, 0xfe]), resolveInputFormat({ encoding: 'utf-16' })).catch((e: unknown) => e);
    expect((bom as CsvFileError).code).toBe('empty_file');
    const short = await load({ name: 's', table: 's', columns: [{ name: 'é', type: 'text' }] }, Buffer.from([0xe9, 0x0a]), resolveInputFormat({ encoding: 'latin1' }));
    expect(short).toEqual({ out: Buffer.alloc(0), rejects: [] });
  });

  it('a UTF-8 file passes no decoder', () => {
    expect(decoderFor('utf-8')).toBeNull();
  });
});

describe('dates and decimals in the file\'s spelling reach COPY as ISO dates and decimal points', () => {
  const typed: DatasetDef = {
    name: 'm',
    table: 'm',
    columns: [
      { name: 'day', type: 'date' },
      { name: 'at', type: 'timestamptz' },
      { name: 'price', type: 'numeric', precision: 6, scale: 2 },
      { name: 'qty', type: 'integer' },
    ],
  };
  const run = async (csv: string, format: Partial<InputFormat>) => {
    const f = resolveInputFormat(format);
    const { out, rejects } = await load(typed, Buffer.from(csv), f);
    return { rows: readCopy(out, f.delimiter), rejects: rejects.map((r) => [r.line, r.code, r.column]) };
  };

  it('DD/MM/YYYY with a decimal comma and semicolons', async () => {
    const csv = 'day;at;price;qty\n31/12/2024;01/02/2025 13:45:00+01:00;1234,56;7\n"29/02/2024";"28/02/2025T00:00Z";"-0,5";-3\n;;;\n';
    expect(await run(csv, { delimiter: ';', dateFormat: 'DD/MM/YYYY', decimalSeparator: ',' })).toEqual({
      rows: [
        ['2', '2024-12-31', '2025-02-01 13:45:00+01:00', '1234.56', '7'],
        ['3', '2024-02-29', '2025-02-28T00:00Z', '-0.5', '-3'],
        ['4', null, null, null, null],
      ],
      rejects: [],
    });
  });

  it('a decimal comma may group the integer part with points: they are dropped; other points are not numbers', async () => {
    const csv = 'price;qty\n1.234,56;\n-9.999;\n"1.234.567";\n,5;\n12.34;\n1234.567;\n1.23;\n.5;\n1.234,5.6;\n';
    const { out, rejects } = await load({ name: 'n', table: 'n', columns: [{ name: 'price', type: 'numeric' }, { name: 'qty', type: 'integer' }] }, Buffer.from(csv), resolveInputFormat({ delimiter: ';', decimalSeparator: ',' }));
    expect(readCopy(out, ';')).toEqual([['2', '1234.56', null], ['3', '-9999', null], ['4', '1234567', null], ['5', '.5', null]]);
    expect(rejects.map((r) => [r.line, r.code])).toEqual([[6, 'invalid_numeric'], [7, 'invalid_numeric'], [8, 'invalid_numeric'], [9, 'invalid_numeric'], [10, 'invalid_numeric']]);
  });

  it.each([
    ['MM/DD/YYYY', '12/31/2024', '2024-12-31'],
    ['DD.MM.YYYY', '31.12.2024', '2024-12-31'],
    ['DD-MM-YYYY', '31-12-2024', '2024-12-31'],
    ['YYYY/MM/DD', '2024/12/31', '2024-12-31'],
    ['YYYY.MM.DD', '2024.12.31', '2024-12-31'],
    ['YYYY-MM-DD', '2024-12-31', '2024-12-31'],
  ] as const)('%s: %s → %s', async (dateFormat, written, iso) => {
    const { rows, rejects } = await run(`day,at\n${written},${written} 08:00Z\n`, { dateFormat });
    expect(rejects).toEqual([]);
    expect(rows).toEqual([['2', iso, `${iso} 08:00Z`]]);
  });

  it('values not in the stated spelling are rejected per row with the usual codes', async () => {
    const csv =
      'day;at;price;qty\n' +
      '2024-12-31;;;\n' + // ISO when DD/MM/YYYY is stated
      '31/02/2024;;;\n' + // no such day
      '1/2/2024;;;\n' + // not zero-padded
      ';2025-01-01 10:00Z;;\n' +
      ';31/12/2024 25:00Z;;\n' +
      ';;1.5;\n' + // a point when the comma is stated
      ';;1,2,3;\n' +
      ';;10000,00;\n' + // numeric(6,2): 4 integer digits at most
      ';;;1,0\n' + // integers stay integers
      '01/01/2025;;9999,99;42\n';
    const { rows, rejects } = await run(csv, { delimiter: ';', dateFormat: 'DD/MM/YYYY', decimalSeparator: ',' });
    expect(rejects).toEqual([
      [2, 'invalid_date', 'day'],
      [3, 'invalid_date', 'day'],
      [4, 'invalid_date', 'day'],
      [5, 'invalid_timestamp', 'at'],
      [6, 'invalid_timestamp', 'at'],
      [7, 'invalid_numeric', 'price'],
      [8, 'invalid_numeric', 'price'],
      [9, 'out_of_range', 'price'],
      [10, 'invalid_integer', 'qty'],
    ]);
    expect(rows).toEqual([['11', '2025-01-01', null, '9999.99', '42']]);
  });
});

describe('relaxed quotes and other delimiters, by example', () => {
  const places: DatasetDef = { name: 'p', table: 'p', columns: [{ name: 'name', type: 'text' }, { name: 'height', type: 'text' }, { name: 'where', type: 'text' }] };

  it('a quote inside an unquoted field is a literal: quoted and doubled in the output', async () => {
    const csv = 'name|height|where\nAda|5\'10"|37°36\'37.8"N 122°22\'31.2"W\n"Bob ""B"""|6\'|"x|y"\n';
    const format = resolveInputFormat({ delimiter: '|', quotes: 'relaxed' });
    const { out, rejects } = await load(places, Buffer.from(csv), format);
    expect(rejects).toEqual([]);
    expect(out.toString()).toBe('2|Ada|"5\'10"""|"37°36\'37.8""N 122°22\'31.2""W"\n3|"Bob ""B"""|6\'|"x|y"\n');
    expect(readCopy(out, '|')).toEqual([['2', 'Ada', '5\'10"', '37°36\'37.8"N 122°22\'31.2"W'], ['3', 'Bob "B"', "6'", 'x|y']]);
    const strict = await load(places, Buffer.from(csv), resolveInputFormat({ delimiter: '|' }));
    expect(strict.rejects.map((r) => r.code)).toEqual(['malformed_csv']);
  });

  it('tab-delimited: tabs separate, spaces are trimmed; the output keeps the tab and COPY is told so', async () => {
    const format = resolveInputFormat(normaliseInputFormat({ delimiter: 'tab' }));
    const { out, rejects } = await load(places, Buffer.from('name\theight\twhere\n Ada \t\t"a\tb"\n'), format);
    expect(rejects).toEqual([]);
    expect(readCopy(out, '\t')).toEqual([['2', 'Ada', null, 'a\tb']]);
    expect(copyStatement(places, { columns: ['name'] }, '\t')).toBe(`COPY "p" ("line_number", "name") FROM STDIN (FORMAT csv, DELIMITER E'\\t')`);
    expect(copyStatement(places, { columns: ['name'] }, ',')).toBe('COPY "p" ("line_number", "name") FROM STDIN (FORMAT csv)');
  });

  it('the default format passes a record through as its original bytes, as before', async () => {
    const { out } = await load(places, Buffer.from('name,height,where\nAda,"5\'10""",x\n'), resolveInputFormat({}));
    expect(out.toString()).toBe('2,Ada,"5\'10""",x\n');
  });
});
