// The inference fixtures (test/fixtures/infer: files written with every delimiter, encoding, date spelling,
// decimal separator and quote mode, each with its hand-written truth) load through the decoder and the
// transform with their true format and column types: every data row is accepted, none rejected. The truth
// names columns as inference does (snake_case); each is fed by the header name at its position (an alias).
import { readdirSync, readFileSync } from 'node:fs';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parse } from 'csv-parse/sync';
import iconv from 'iconv-lite';
import { describe, expect, it } from 'vitest';
import { createCopyTransform, decoderFor, type HeaderInfo, type Reject } from '../../src/ingest/csv/index.ts';
import { normaliseInputFormat, resolveInputFormat } from '../../src/ingest/csv/input-format.ts';
import type { ColumnType, DatasetDef } from '../../src/ingest/datasets/types.ts';
import { readCopy } from '../helpers/csv-reference.ts';

const DIR = new URL('../fixtures/infer/', import.meta.url);
const fixtures = readdirSync(DIR).filter((f) => f.endsWith('.csv'));

describe('the inference fixtures load with their true format', () => {
  it.each(fixtures)('%s', async (file) => {
    const truth = JSON.parse(readFileSync(new URL(file.replace(/\.csv$/, '.truth.json'), DIR), 'utf8')) as {
      dialect: Record<string, string>;
      columns: Record<string, string>;
    };
    const format = resolveInputFormat(normaliseInputFormat(truth.dialect));
    const bytes = readFileSync(new URL(file, DIR));
    const [names] = parse(iconv.decode(bytes, format.encoding), { delimiter: format.delimiter, to_line: 1, relax_quotes: true, bom: true }) as string[][];
    const columns = Object.entries(truth.columns).map(([name, type], i) => {
      const [base, p, s] = /^(\w+)(?:\((\d+)(?:,(\d+))?\))?$/.exec(type)!.slice(1);
      return { name, type: base as ColumnType, aliases: [names![i]!], ...(p ? { precision: Number(p), scale: Number(s ?? 0) } : {}) };
    });
    const dataset: DatasetDef = { name: 'f', table: 'f', columns };
    const rejects: Reject[] = [];
    const chunks: Buffer[] = [];
    let header: HeaderInfo | null = null;
    const transform = createCopyTransform(dataset, { onHeader: (h) => (header = h), onReject: (r) => rejects.push(r), format });
    const decoder = decoderFor(format.encoding);
    const sink = new Writable({ write: (c: Buffer, _e, cb) => (chunks.push(c), cb()) });
    await pipeline([Readable.from([bytes]), ...(decoder ? [decoder] : []), transform, sink]);
    expect(rejects).toEqual([]);
    expect(header!.columns).toEqual(columns.map((c) => c.name));
    const rows = readCopy(Buffer.concat(chunks), format.delimiter);
    expect(rows.length).toBe(transform.stats.records);
    expect(rows.length).toBeGreaterThan(0);
  });
});
