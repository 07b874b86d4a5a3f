import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { type CopyTransform, createCopyTransform, CsvFileError, type Reject } from '../../src/ingest/csv/index.ts';
import type { DatasetDef } from '../../src/ingest/datasets/types.ts';

const all: DatasetDef = {
  name: 'all',
  table: 'all_types',
  columns: [
    { name: 'id', type: 'uuid', required: true },
    { name: 'n', type: 'integer' },
    { name: 'big', type: 'bigint' },
    { name: 'num', type: 'numeric' },
    { name: 'flag', type: 'boolean' },
    { name: 'day', type: 'date' },
    { name: 'at', type: 'timestamptz' },
    { name: 'doc', type: 'jsonb' },
    { name: 'kind', type: 'enum', values: ['red', 'green'] },
    { name: 'name', type: 'text', maxLength: 5 },
    { name: 'code', type: 'text', pattern: /^[A-Z]{3}$/ },
  ],
};

const HEADER = 'id,n,big,num,flag,day,at,doc,kind,name,code';
const ID = '98ebcb82-034f-4ba5-a41e-dd74d0cfc15a';
const GOOD = [ID, '1', '2', '3.5', 't', '2025-01-31', '2025-01-31T10:00:00Z', '"{""a"":1}"', 'red', 'héllo', 'USD'];

/** A record: GOOD with some positions replaced. */
const row = (over: Record<number, string>): string => GOOD.map((v, i) => over[i] ?? v).join(',');

async function run(input: string | Buffer, opts: { maxRecordBytes?: number; chunk?: number } = {}): Promise<{ out: string; rejects: Reject[]; stats: CopyTransform['stats'] }> {
  const rejects: Reject[] = [];
  const out: Buffer[] = [];
  const t = createCopyTransform(all, { onHeader: () => {}, onReject: (r) => rejects.push(r), maxRecordBytes: opts.maxRecordBytes });
  const b = Buffer.from(input);
  const size = opts.chunk ?? b.length;
  const chunks = Array.from({ length: Math.ceil(b.length / size) }, (_, i) => b.subarray(i * size, (i + 1) * size));
  await pipeline(Readable.from(chunks), t, new Writable({ write: (c: Buffer, _e, cb) => (out.push(c), cb()) }));
  return { out: Buffer.concat(out).toString(), rejects, stats: t.stats };
}

describe('every reject code, with its column and line', () => {
  it.each<[string, string | Buffer, string | null]>([
    ['required', row({ 0: '  ' }), 'id'],
    ['invalid_uuid', row({ 0: ID.slice(1) }), 'id'],
    ['invalid_uuid', row({ 0: `"${ID.slice(0, 35)}"""` }), 'id'],
    ['invalid_integer', row({ 1: '1.5' }), 'n'],
    ['out_of_range', row({ 1: '2147483648' }), 'n'],
    ['out_of_range', row({ 2: '-9223372036854775809' }), 'big'],
    ['invalid_integer', row({ 2: '12abc' }), 'big'],
    ['invalid_numeric', row({ 3: '1,5' }).replace('1,5', '"1,5"'), 'num'],
    ['invalid_boolean', row({ 4: 'maybe' }), 'flag'],
    ['invalid_date', row({ 5: '2025-02-29' }), 'day'],
    ['invalid_timestamp', row({ 6: '2025-01-31T25:00:00Z' }), 'at'],
    ['invalid_json', row({ 7: '"{""a"":}"' }), 'doc'],
    ['invalid_json', row({ 7: '"{""a"":""\\u0000""}"' }), 'doc'],
    ['invalid_json', row({ 7: '"[""\\ud800""]"' }), 'doc'],
    ['invalid_enum', row({ 8: 'Red' }), 'kind'],
    ['too_long', row({ 9: 'héllo!' }), 'name'],
    ['pattern', row({ 10: 'usd' }), 'code'],
    ['field_count', `${row({})},extra`, null],
    ['field_count', GOOD.slice(0, 5).join(','), null],
    ['malformed_csv', row({ 9: 'a"b' }), 'name'],
    ['invalid_utf8', Buffer.concat([Buffer.from(row({ 9: 'x' }).slice(0, -4)), Buffer.from([0xc3, 0x28]), Buffer.from(',USD')]), 'name'],
    ['nul_byte', row({ 9: 'a\u0000b' }), 'name'],
  ])('%s (%s)', async (code, record, column) => {
    const input = Buffer.concat([Buffer.from(`${HEADER}\n${row({})}\n"\n"\n`), Buffer.from(record), Buffer.from(`\n${row({})}\n`)]);
    const r = await run(input);
    expect(r.rejects).toHaveLength(2); // the record under test, and the lone `"\n"` field-count record
    expect(r.rejects[0]).toMatchObject({ line: 3, code: 'field_count' });
    expect(r.rejects[1]).toMatchObject({ line: 5, code, column });
    expect(r.rejects[1]!.message).not.toBe('');
    expect(r.out.split('\n').filter(Boolean).map((l) => l.split(',')[0])).toEqual(['2', '6']);
    expect(r.stats).toMatchObject({ records: 4, rowsAccepted: 2, rowsRejected: 2 });
  });

  it('empty optional values are NULL, not rejects; blank quoted values too', async () => {
    const r = await run(`${HEADER}\n${ID},,"",  ,"",,"","", , ,""\n`);
    expect(r.rejects).toEqual([]);
    expect(r.out).toBe(`2,${ID},,,,,,,,,,\n`);
  });

  it('accepts the edges of every type', async () => {
    const edges = [ID.toUpperCase(), '-2147483648', '9223372036854775807', '-1e-1000', 'NO', '2024-02-29', '2024-02-29 23:59:59.999999-15:59', '"[]"', 'green', '"a""b"', 'ABC'];
    const r = await run(`${HEADER}\n${edges.join(',')}\n`);
    expect(r.rejects).toEqual([]);
    expect(r.out).toBe(`2,${edges.join(',')}\n`);
  });

  it('reject raw is the original record text, capped at 8 KiB on a character boundary', async () => {
    const long = 'é'.repeat(5000); // 10,000 bytes
    const r = await run(`${HEADER}\n${row({ 9: long })}\n`);
    expect(r.rejects[0]).toMatchObject({ line: 2, code: 'too_long', column: 'name' });
    const raw = r.rejects[0]!.raw;
    expect(Buffer.byteLength(raw)).toBeLessThanOrEqual(8192);
    expect(raw.endsWith('é')).toBe(true);
    expect(row({ 9: long }).startsWith(raw)).toBe(true);
  });

  it('reject raw of a CRLF record has no terminator and NUL replaced', async () => {
    const r = await run(`${HEADER}\r\n${row({ 9: 'a\u0000' })}\r\n`);
    expect(r.rejects[0]!.raw).toBe(row({ 9: 'a\uFFFD' }));
  });

  it('line numbers stay right after multi-line quoted records and blank lines', async () => {
    const input = [HEADER, row({ 9: '"a\nb"' }), '', row({ 1: 'x' }), row({ 9: '"\r\n\r\n"' }), '\r', row({ 2: 'y' }), row({})].join('\n');
    for (const chunk of [undefined, 1, 7]) {
      const r = await run(`${input}\n`, { chunk });
      expect(r.rejects.map((j) => [j.line, j.code])).toEqual([[5, 'invalid_integer'], [10, 'invalid_integer']]);
      expect(r.out.split('\n').filter((l) => /^\d+,98/.test(l)).map((l) => l.split(',')[0])).toEqual(['2', '6', '11']);
    }
  });
});

describe('record_too_large bounds memory', () => {
  it('rejects a long record without buffering it and carries on at the right line', async () => {
    const input = `${HEADER}\n${row({ 9: `"${'x\n'.repeat(300)}"` })}\n${row({})}\n`;
    for (const chunk of [1, 64, 100000]) {
      const r = await run(input, { maxRecordBytes: 256, chunk });
      expect(r.rejects).toHaveLength(1);
      expect(r.rejects[0]).toMatchObject({ line: 2, code: 'record_too_large', column: null });
      expect(r.out).toBe(`303,${row({})}\n`);
    }
  });

  it('an unterminated quote past the size cap still fails the file, naming the line it opened on', async () => {
    const noQuotes = row({ 7: '1' }); // no quote later in the file to close the open one
    const input = `${HEADER}\n${noQuotes}\n${row({ 7: '1', 9: '"open' })}\n${`${noQuotes}\n`.repeat(20)}`;
    for (const chunk of [1, 128, 100000]) {
      const err = await run(input, { maxRecordBytes: 1000, chunk }).then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(CsvFileError);
      expect(err).toMatchObject({ code: 'unterminated_quote', message: expect.stringMatching(/opened on line 3/) });
    }
  });

  it('a too-large record that does close is one reject counting each of its lines as a failed row', async () => {
    const noQuotes = row({ 7: '1' });
    const input = `${HEADER}\n${noQuotes}\n${row({ 7: '1', 9: '"open' })}\n${`${noQuotes}\n`.repeat(20)}",x\n${noQuotes}\n`;
    for (const chunk of [1, 128, 100000]) {
      const r = await run(input, { maxRecordBytes: 1000, chunk });
      expect(r.rejects.map((j) => [j.line, j.lines, j.code])).toEqual([[3, 22, 'record_too_large']]);
      expect(r.out).toBe(`2,${noQuotes}\n25,${noQuotes}\n`);
      expect(r.stats).toMatchObject({ records: 24, rowsAccepted: 2, rowsRejected: 22, lines: 25, rejectedLines: 22 });
    }
  });
});
