// errors.csv stays valid CSV whatever was rejected: csv-parse (strict) reads every line of it, and
// `_line` / `_error` are the last two fields of every rejected record, broken ones included.
import { parse } from 'csv-parse/sync';
import { describe, expect, it } from 'vitest';
import { errorsCsvHeader, errorsCsvLine } from '../../src/uploads/errors-csv.ts';

const HEADER = 'event_id,event_type,"occurred, at"';
const rows = [
  { line: 3, code: 'malformed_csv', message: 'malformed CSV: quote…', raw: 'x,"ab"c,d' },
  { line: 5, code: 'record_too_large', message: 'record is larger…', raw: '1,"open and cut off at 8 KiB' },
  { line: 7, code: 'malformed_csv', message: 'bare CR', raw: '1,a\rb,c' },
  { line: 9, code: 'pattern', message: 'currency "usd"', raw: '1,x,2025-01-01' },
];

describe('errors.csv', () => {
  it('is valid CSV: every rejected record on its own row, _line and _error last', () => {
    const header = errorsCsvHeader(HEADER);
    expect(header).toEqual({ line: `${HEADER},_line,_error\n`, fields: 3 });
    const text = header.line + rows.map((r) => errorsCsvLine(r, header.fields)).join('');
    const records = parse(text) as string[][]; // strict: quotes and field counts
    expect(records).toHaveLength(1 + rows.length);
    expect(records[0]).toEqual(['event_id', 'event_type', 'occurred, at', '_line', '_error']);
    for (const [i, r] of rows.entries()) {
      const record = records[i + 1]!;
      expect(record.slice(-2)).toEqual([String(r.line), `${r.code}: ${r.message}`]);
      if (r.code !== 'pattern') expect(record).toEqual([r.raw, '', '', String(r.line), `${r.code}: ${r.message}`]);
    }
    expect(records[4]!.slice(0, 3)).toEqual(['1', 'x', '2025-01-01']); // a well-formed record stays as it was
  });

  it('without a header (the file failed before it): just _line and _error', () => {
    expect(errorsCsvHeader(null)).toEqual({ line: '_line,_error\n', fields: 0 });
    expect(errorsCsvLine(rows[0]!, 0)).toBe('"x,""ab""c,d",3,malformed_csv: malformed CSV: quote…\n');
  });
});
