// Dataset inference from a sample (src/datasets/infer.ts): measured against the hand-written truth of the
// fixtures in test/fixtures/infer/ (match rate printed, a bar asserted, mismatches listed), every proposal
// accepted unchanged by normaliseDefinition, and samples cut mid-line / mid-character, refused samples and
// header names made identifiers.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import iconv from 'iconv-lite';
import { describe, expect, it } from 'vitest';
import { normaliseDefinition } from '../../src/datasets/definition.ts';
import { InferError, inferDataset, toIdentifier } from '../../src/datasets/infer.ts';
import { DIALECT_KEYS, FIXTURES_DIR, fixtureFiles, measureInference, readTruth, report } from '../helpers/infer-fixtures.ts';

const infer = (csv: string | Buffer, complete = true, name?: string) => inferDataset(Buffer.from(csv), { complete, name });
const refusal = (csv: string | Buffer, complete = true) => {
  try {
    infer(csv, complete);
  } catch (err) {
    if (err instanceof InferError) return { code: err.code, message: err.message };
    throw err;
  }
  return null;
};

describe('against the hand-written truth of test/fixtures/infer', () => {
  it('matches at least 90% of column types and every dialect; prints the rate and the mismatches', async () => {
    const m = await measureInference();
    console.log(`dataset inference vs truth:\n${report(m)}`);
    expect(m.files.length).toBeGreaterThanOrEqual(10);
    expect(m.files.flatMap((f) => f.dialectMismatches.map((p) => `${f.file}: ${p}`))).toEqual([]);
    expect(m.columnMatches / m.columns).toBeGreaterThanOrEqual(0.9);
  });

  it('proposes definitions normaliseDefinition accepts unchanged, one column per header field', async () => {
    const m = await measureInference();
    for (const f of m.files) {
      const spec = normaliseDefinition(f.inference.definition);
      expect(spec.columns.map((c) => c.name), f.file).toEqual(f.inference.columns.map((c) => c.name));
      expect(f.inference.definition.format, f.file).toEqual(expect.objectContaining({ delimiter: f.inference.dialect.delimiter }));
    }
  });

  it('reports per column what the sample held', async () => {
    const [orders] = (await measureInference()).files.filter((f) => f.file === 'orders-comma.csv');
    const byName = Object.fromEntries(orders!.inference.columns.map((c) => [c.name, c]));
    expect(orders!.inference.sampledRows).toBe(6);
    expect(byName.order_id).toMatchObject({ type: 'uuid', required: true, nullable: false, values: 6, empty: 0 });
    expect(byName.shipped_on).toMatchObject({ type: 'date', required: false, nullable: true, values: 6, empty: 2 });
    expect(byName.notes!.samples).toEqual(['gift wrap, please', 'call before\ndelivery', 'says "urgent"']);
    expect(byName.unit_price!.type).toBe('numeric(12,2)');
    expect(orders!.inference.note).toContain('first 6 row(s)');
  });

  it('has a well-formed truth file for every fixture', async () => {
    const types = ['text', 'integer', 'bigint', 'numeric', 'boolean', 'uuid', 'date', 'timestamptz', 'jsonb'];
    for (const f of await fixtureFiles()) {
      const truth = await readTruth(f);
      expect(Object.keys(truth.dialect).sort(), f).toEqual([...DIALECT_KEYS].sort());
      expect(Object.values(truth.columns).filter((t) => !types.includes(t)), f).toEqual([]);
    }
  });
});

describe('a sample cut short', () => {
  it('drops a last line cut mid-line and mid-character (UTF-8), and says so', async () => {
    const whole = await readFile(path.join(FIXTURES_DIR, 'kunden-win1252.csv'));
    const utf8 = Buffer.from(iconv.decode(whole, 'windows-1252'));
    const cut = utf8.subarray(0, utf8.indexOf('Öko') + 1); // inside the two bytes of Ö
    const r = inferDataset(cut, { complete: false });
    expect(r.dialect).toMatchObject({ encoding: 'utf-8', delimiter: ';', decimalSeparator: ',', dateFormat: 'DD.MM.YYYY', cutLine: true });
    expect(r.sampledRows).toBe(4);
  });

  it('decodes a UTF-16 sample cut inside a code unit', async () => {
    const whole = await readFile(path.join(FIXTURES_DIR, 'events-tab-utf16le.csv'));
    const r = inferDataset(whole.subarray(0, whole.length - 7), { complete: false });
    expect(r.dialect).toMatchObject({ encoding: 'utf-16', delimiter: '\t', bom: true, cutLine: true });
    expect(r.sampledRows).toBe(3);
    expect(r.columns.map((c) => c.type)).toEqual(['uuid', 'text', 'timestamptz', 'text', 'bigint', 'jsonb']);
  });

  it('keeps the records before a quoted field the cut left open', () => {
    const r = infer('id,comment\n1,"one"\n2,"two\nlines"\n3,"cut in\nthe mid', false);
    expect(r.sampledRows).toBe(2);
    expect(r.warnings).toEqual([]);
    expect(r.columns[1]!.samples).toEqual(['one', 'two\nlines']);
  });

  it('judges a header-only sample: text columns, nothing required', () => {
    const r = infer('a,b,c\n');
    expect(r.sampledRows).toBe(0);
    expect(r.definition.columns).toEqual([{ name: 'a', type: 'text' }, { name: 'b', type: 'text' }, { name: 'c', type: 'text' }]);
  });
});

describe('types', () => {
  it('tells bigint from integer, codes from numbers, booleans from 0/1, and jsonb objects from scalars', () => {
    const r = infer('a,b,c,d,e,f\n2147483647,2147483648,007,1,yes,"{""k"":1}"\n-5,1,123,0,no,[1]\n');
    expect(r.columns.map((c) => c.type)).toEqual(['integer', 'bigint', 'text', 'integer', 'boolean', 'jsonb']);
    expect(infer('j\n"""a string"""\n42\n').columns[0]!.type).toBe('text');
  });

  it('decides day and month by a value above 12, and says when it had to guess', () => {
    expect(infer('d\n01/02/2025\n03/14/2025\n').dialect).toMatchObject({ dateFormat: 'MM/DD/YYYY', dateFormatAmbiguous: false });
    expect(infer('d\n01/02/2025\n14/03/2025\n').dialect).toMatchObject({ dateFormat: 'DD/MM/YYYY', dateFormatAmbiguous: false });
    const guess = infer('d,n\n01/02/2025,1\n03/04/2025,2\n');
    expect(guess.dialect).toMatchObject({ dateFormat: 'MM/DD/YYYY', dateFormatAmbiguous: true });
    expect(guess.warnings.join()).toContain('guess');
  });

  it('reads a decimal comma only where the delimiter is not a comma', () => {
    expect(infer('a;b\n12,5;x\n3;y\n').columns[0]!.type).toBe('numeric(11,1)');
    expect(infer('a;b\n12,5;x\n3;y\n').dialect.decimalSeparator).toBe(',');
    expect(infer('a;b\n12.5;x\n3;y\n').dialect.decimalSeparator).toBe('.');
    expect(infer('a,b\n"12,5",x\n3,y\n').columns[0]!.type).toBe('text');
  });
});

describe('names', () => {
  it('makes identifiers: lower case, accents dropped, reserved words and system columns renamed, deduplicated', () => {
    expect(toIdentifier('Ünits Sold (€)', 'c')).toBe('units_sold');
    expect(toIdentifier('select', 'c')).toBe('select_');
    expect(toIdentifier('upload_id', 'c')).toBe('upload_id_');
    expect(toIdentifier('2024', 'c')).toBe('_2024');
    expect(toIdentifier('pg_class', 'c')).toBe('_pg_class');
    expect(toIdentifier('€€', 'column_3')).toBe('column_3');
    expect(toIdentifier('x'.repeat(100), 'c')).toHaveLength(63);
    const r = infer('A B,a_b,a b!,,Name\n1,2,3,4,5\n');
    expect(r.definition.columns.map((c) => [c.name, c.aliases])).toEqual([
      ['a_b_2', ['A B']],
      ['a_b', undefined],
      ['a_b_3', ['a b!']],
      ['column_4', undefined],
      ['name', undefined],
    ]);
    expect(() => normaliseDefinition(r.definition)).not.toThrow();
  });

  it('proposes the dataset name given, made an identifier; "dataset" by default', () => {
    expect(infer('a\n1\n', true, 'My Orders 2025').definition.name).toBe('my_orders_2025');
    expect(infer('a\n1\n').definition.name).toBe('dataset');
    expect(() => infer('a\n1\n', true, 'webhook_events')).toThrow(/built in/);
  });
});

describe('refusals', () => {
  it.each([
    ['an empty sample', '', 'sample_empty'],
    ['only blank lines', '\n\r\n\n', 'sample_empty'],
    ['a first line longer than the sample', Buffer.from('a,b,c'.repeat(10)), 'sample_empty', false],
    ['a PNG', Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0]), 'unsupported_media_type'],
    ['NUL bytes', Buffer.from('a,b\n1,\u0000\n'), 'unsupported_media_type'],
    ['data without a header', '1,2.5,2025-01-01\n2,3.5,2025-01-02\n3,1.25,2025-01-03\n', 'sample_no_header'],
    ['an empty first line of fields', ',,\n1,2,3\n', 'sample_no_header'],
  ])('refuses %s', (_what, csv, code, complete = true) => {
    expect(refusal(csv, complete)).toMatchObject({ code });
  });

  it('accepts a header whose names happen to be numbers over text columns', () => {
    expect(infer('2024,2025\nfoo,bar\n').definition.columns.map((c) => c.name)).toEqual(['_2024', '_2025']);
  });
});
