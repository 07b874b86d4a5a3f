// Every line of a file is accounted for. The property: for thousands of random corruptions of generated
// files (a quote inserted or removed, bytes cut, the file truncated, a lone CR, a NUL, a line joined or
// split), the transform and the reference (csv-parse, strict quoting: test/helpers/csv-reference.ts)
// either both fail the file with the same stated reason, or agree on every physical line: loaded, or
// rejected with the same code — and the loaded values are the same. Then the inputs of the bug reports.
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { createCopyTransform, CsvFileError, type CopyTransform, type Reject } from '../../src/ingest/csv/index.ts';
import { webhookEvents } from '../../src/ingest/datasets/index.ts';
import { referenceLoad, transformLoad } from '../helpers/csv-reference.ts';
import { generateCsv } from '../helpers/generate.ts';

const CASES = Number(process.env.CSV_PROPERTY_CASES ?? 5000);

function prng(seed: number): (n: number) => number {
  let a = seed | 0;
  return (n) => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) % n;
  };
}

/** A small generated file with some CRLF endings, blank lines, quoted plain fields and multi-line values. */
function baseFile(rnd: (n: number) => number, seed: number): string {
  const lines = generateCsv(3 + rnd(30), { seed }).toString('latin1').split('\n').slice(0, -1);
  let out = lines[0] + '\n';
  for (const line of lines.slice(1)) {
    let row = line;
    if (rnd(15) === 0) row = row.replace(/,"\{.*\}"$/, ',"{\n""note"": ""multi\nline""\n}"');
    if (rnd(15) === 0) row = row.replace(/,(USD|EUR|GBP|JPY),/, ',"$1",');
    out += row + (rnd(8) === 0 ? '\r\n' : '\n');
    if (rnd(20) === 0) out += rnd(2) ? '\n' : '\r\n';
  }
  return rnd(6) === 0 ? out.slice(0, -1) : out; // sometimes no final newline
}

const CORRUPTIONS = ['insert_quote', 'remove_quote', 'truncate', 'cut_bytes', 'lone_cr', 'nul', 'join_lines', 'split_line'] as const;

function corrupt(text: string, kind: (typeof CORRUPTIONS)[number], rnd: (n: number) => number): string {
  const at = rnd(text.length + 1);
  const nth = (ch: string): number => {
    const all = [...text.matchAll(new RegExp(ch === '"' ? '"' : '\\n', 'g'))].map((m) => m.index!);
    return all.length ? all[rnd(all.length)]! : -1;
  };
  switch (kind) {
    case 'insert_quote':
      return text.slice(0, at) + '"' + text.slice(at);
    case 'remove_quote': {
      const i = nth('"');
      return i < 0 ? text : text.slice(0, i) + text.slice(i + 1);
    }
    case 'truncate':
      return text.slice(0, at);
    case 'cut_bytes':
      return text.slice(0, at) + text.slice(at + 1 + rnd(30));
    case 'lone_cr':
      return text.slice(0, at) + '\r' + text.slice(at);
    case 'nul':
      return text.slice(0, at) + '\u0000' + text.slice(at);
    case 'join_lines': {
      const i = nth('\n');
      return i < 0 ? text : text.slice(0, i) + text.slice(i + 1);
    }
    case 'split_line':
      return text.slice(0, at) + '\n' + text.slice(at);
  }
}

describe('line accounting: the transform agrees with csv-parse on corrupted files', () => {
  it(`${CASES} random corruptions: the same failure, or the same outcome for every line`, async () => {
    const tally = { failed: new Map<string, number>(), loaded: 0, withMalformed: 0 };
    for (let n = 0; n < CASES; n++) {
      const rnd = prng(n * 7919 + 1);
      let text = baseFile(rnd, n);
      const applied: string[] = [];
      for (let k = 1 + rnd(3); k > 0; k--) {
        const kind = CORRUPTIONS[rnd(CORRUPTIONS.length)]!;
        applied.push(kind);
        text = corrupt(text, kind, rnd);
      }
      const input = Buffer.from(text, 'latin1');
      const expected = referenceLoad(input, webhookEvents);
      const label = `case ${n} (${applied.join(', ')}): ${JSON.stringify(text.slice(0, 3000))}`;
      for (const chunkSize of [input.length + 1, 1 + rnd(64)]) {
        const got = await transformLoad(input, webhookEvents, chunkSize);
        if (expected.failure) expect(expected.admissible, label).toContain(got.failure);
        else expect(got.failure, label).toBeNull();
        expect(got.lines, label).toEqual(expected.lines);
        expect(got.rows, label).toEqual(expected.rows);
      }
      if (expected.failure) tally.failed.set(expected.failure, (tally.failed.get(expected.failure) ?? 0) + 1);
      else {
        tally.loaded++;
        if ([...expected.lines.values()].includes('malformed_csv')) tally.withMalformed++;
      }
    }
    // Both kinds of outcome, and the interesting ones, were exercised.
    expect(tally.loaded).toBeGreaterThan(CASES * 0.4);
    expect(tally.withMalformed).toBeGreaterThan(CASES * 0.1);
    expect(tally.failed.get('unterminated_quote') ?? 0).toBeGreaterThan(CASES * 0.05);
  }, 600_000);
});

const ds = webhookEvents;

async function load(input: Buffer, chunkSize = 64 * 1024, maxRecordBytes?: number) {
  const rejects: Reject[] = [];
  let out = 0;
  const t: CopyTransform = createCopyTransform(ds, { onHeader: () => {}, onReject: (r) => rejects.push(r), ...(maxRecordBytes ? { maxRecordBytes } : {}) });
  const pieces: Buffer[] = [];
  for (let i = 0; i < input.length; i += chunkSize) pieces.push(input.subarray(i, i + chunkSize));
  let error: CsvFileError | null = null;
  try {
    await pipeline(Readable.from(pieces), t, new Writable({ write: (c: Buffer, _e, cb) => ((out += c.length), cb()) }));
  } catch (err) {
    if (!(err instanceof CsvFileError)) throw err;
    error = err;
  }
  return { rejects, out, stats: t.stats, error };
}

/** A valid row whose values need no quotes (so no quote later in the file can close an open one). */
const plainRow = (i: number) =>
  `98ebcb82-034f-4ba5-a41e-${String(i).padStart(12, '0')},invoice.paid,stripe,cus_${i},${i},USD,2025-01-01T00:00:00Z,{}\n`;
const HEADER = 'event_id,event_type,source,customer_id,amount_cents,currency,occurred_at,payload\n';

describe('a quote that is never closed fails the file (bug report inputs)', () => {
  it('small file: header, a valid row, `"never closed`, three valid rows → unterminated_quote at line 3, nothing loaded', async () => {
    const bad = plainRow(2).replace(',stripe,', ',"never closed,');
    const input = Buffer.from(HEADER + plainRow(1) + bad + plainRow(3) + plainRow(4) + plainRow(5));
    for (const chunkSize of [input.length, 7, 1]) {
      const r = await load(input, chunkSize);
      expect(r.error?.code).toBe('unterminated_quote');
      expect(r.error?.message).toMatch(/opened on line 3 is never closed/);
    }
  });

  it('20 MB: the unclosed quote followed by 220,000 valid rows → unterminated_quote, not one record_too_large reject', async () => {
    const rows: string[] = [HEADER, plainRow(1), plainRow(2).replace(',stripe,', ',"never closed,')];
    for (let i = 3; i < 220_003; i++) rows.push(plainRow(i));
    const input = Buffer.from(rows.join(''));
    expect(input.length).toBeGreaterThan(20e6);
    const before = process.memoryUsage().arrayBuffers;
    const r = await load(input);
    expect(r.error?.code).toBe('unterminated_quote');
    expect(r.error?.message).toMatch(/opened on line 3/);
    // past maxRecordBytes only a prefix of the open record is kept: memory does not follow the file
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(input.length);
  });

  it('a closed record over the size cap is rejected once, counted as every line it covers', async () => {
    const inner = Array.from({ length: 5000 }, (_, i) => `line ${i}`).join('\n');
    const big = plainRow(2).replace(',stripe,', `,"${inner}",`);
    const input = Buffer.from(HEADER + plainRow(1) + big + plainRow(3));
    for (const chunkSize of [input.length, 4096, 333]) {
      const r = await load(input, chunkSize, 16 * 1024);
      expect(r.error).toBeNull();
      expect(r.rejects).toMatchObject([{ line: 3, lines: 5000, code: 'record_too_large' }]);
      expect(r.stats).toMatchObject({ rowsAccepted: 2, rowsRejected: 5000, records: 5002, lines: 5003 });
      expect(r.stats).toMatchObject({ headerLines: 1, blankLines: 0, acceptedLines: 2, rejectedLines: 5000 });
    }
  });

  it('the books balance: lines = header + blank + loaded + rejected lines, records = loaded + rejected rows', async () => {
    const input = Buffer.from(`\n${HEADER}\r\n${plainRow(1)}x,"a\nb"\n\n${plainRow(2).replace('stripe', 'str"ipe')}${plainRow(3)}`);
    const r = await load(input, 5);
    expect(r.error).toBeNull();
    expect(r.stats).toMatchObject({ lines: 9, headerLines: 1, blankLines: 3, acceptedLines: 2, rejectedLines: 3, rowsAccepted: 2, rowsRejected: 2, records: 4 });
    expect(r.rejects.map((x) => [x.line, x.lines, x.code])).toEqual([[5, 2, 'field_count'], [8, 1, 'malformed_csv']]);
  });

  it('lines ending with a lone CR (classic Mac OS) are named as such, with or without quoted fields', async () => {
    const plain = Buffer.from((HEADER + plainRow(1) + plainRow(2)).replaceAll('\n', '\r'));
    const quoted = Buffer.from(generateCsv(50).toString().replaceAll('\n', '\r'));
    for (const input of [plain, quoted]) {
      for (const chunkSize of [input.length, 64, 7]) {
        const r = await load(input, chunkSize);
        expect(r.error?.code).toBe('unsupported_line_endings');
        expect(r.error?.message).toMatch(/lone carriage return .* only LF and CRLF/);
      }
    }
    // A stray CR in an LF file's header is still just a bad header.
    expect((await load(Buffer.from('event_id,event\rtype,occurred_at\n'))).error?.code).toBe('bad_header');
  });
});
