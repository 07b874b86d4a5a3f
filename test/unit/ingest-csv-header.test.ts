import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { copyStatement, createCopyTransform, CsvFileError, type HeaderInfo, type Reject } from '../../src/ingest/csv/index.ts';
import { webhookEvents } from '../../src/ingest/datasets/index.ts';

const ID = '98ebcb82-034f-4ba5-a41e-dd74d0cfc15a';
const AT = '2025-01-01T00:00:00.000Z';

async function run(input: string | Buffer, chunkSize = 0): Promise<{ out: string; header: HeaderInfo | null; rejects: Reject[]; headerCalls: number }> {
  const rejects: Reject[] = [];
  let header: HeaderInfo | null = null;
  let headerCalls = 0;
  const out: Buffer[] = [];
  const t = createCopyTransform(webhookEvents, {
    onHeader: (h) => {
      header = h;
      headerCalls++;
      expect(out).toEqual([]); // the header is known before any COPY data
    },
    onReject: (r) => rejects.push(r),
  });
  const b = Buffer.from(input);
  const chunks = chunkSize > 0 ? Array.from({ length: Math.ceil(b.length / chunkSize) }, (_, i) => b.subarray(i * chunkSize, (i + 1) * chunkSize)) : [b];
  await pipeline(Readable.from(chunks), t, new Writable({ write: (c: Buffer, _e, cb) => (out.push(c), cb()) }));
  return { out: Buffer.concat(out).toString(), header, rejects, headerCalls };
}

async function headerError(input: string | Buffer, chunkSize = 0): Promise<CsvFileError> {
  const err = await run(input, chunkSize).then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(CsvFileError);
  return err as CsvFileError;
}

describe('header matching', () => {
  it('matches names trimmed and case-insensitively, in the file order, ignoring a UTF-8 BOM', async () => {
    for (const chunkSize of [0, 1, 2, 4]) {
      const r = await run(`\uFEFF Occurred_At ,"EVENT_ID",\tevent_type\n${AT},${ID},x\n`, chunkSize);
      expect(r.header).toEqual({ columns: ['occurred_at', 'event_id', 'event_type'], unknownColumns: [], line: 1, text: ' Occurred_At ,"EVENT_ID",\tevent_type' });
      expect(r.headerCalls).toBe(1);
      expect(r.out).toBe(`2,${AT},${ID},x\n`);
    }
  });

  it('drops unknown columns and reports them', async () => {
    const r = await run(`note,event_id,Extra Col,event_type,occurred_at\nhello,${ID},"a,b",x,${AT}\n`);
    expect(r.header).toEqual({ columns: ['event_id', 'event_type', 'occurred_at'], unknownColumns: ['note', 'Extra Col'], line: 1, text: 'note,event_id,Extra Col,event_type,occurred_at' });
    expect(r.out).toBe(`2,${ID},x,${AT}\n`);
  });

  it('optional columns may be absent', async () => {
    const r = await run(`event_id,event_type,occurred_at\n${ID},x,${AT}\n`);
    expect(r.header?.columns).toEqual(['event_id', 'event_type', 'occurred_at']);
    expect(r.rejects).toEqual([]);
  });

  it('header-only file is valid with 0 rows', async () => {
    for (const input of ['event_id,event_type,occurred_at\n', 'event_id,event_type,occurred_at', 'event_id,event_type,occurred_at\r\n\r\n']) {
      const r = await run(input);
      expect(r.header?.columns).toEqual(['event_id', 'event_type', 'occurred_at']);
      expect(r.out).toBe('');
    }
  });

  it('blank lines before the header are skipped; the header line is reported', async () => {
    const r = await run(`\n\r\nevent_id,event_type,occurred_at\n${ID},x,${AT}\n`);
    expect(r.header?.line).toBe(3);
    expect(r.out).toBe(`4,${ID},x,${AT}\n`);
  });

  it('builds the matching COPY statement', async () => {
    const r = await run(`occurred_at,event_id,event_type\n`);
    expect(copyStatement(webhookEvents, r.header!)).toBe(
      'COPY "webhook_events" ("line_number", "occurred_at", "event_id", "event_type") FROM STDIN (FORMAT csv)',
    );
  });
});

describe('header errors', () => {
  it('missing required columns are named', async () => {
    const e = await headerError('event_type,source\nx,y\n');
    expect(e.code).toBe('missing_columns');
    expect(e.missing).toEqual(['event_id', 'occurred_at']);
    expect(e.message).toBe('missing required column(s): event_id, occurred_at');
  });

  it('duplicate names (after trim / case folding) are a bad header', async () => {
    const e = await headerError('event_id,event_type,occurred_at, Event_ID \n');
    expect(e.code).toBe('bad_header');
    expect(e.message).toMatch(/duplicate/);
  });

  it.each([
    ['0 bytes', ''],
    ['only a BOM', '\uFEFF'],
    ['only whitespace and newlines', ' \t\r\n\n  \n'],
    ['BOM and blank lines', '\uFEFF\r\n\r\n'],
  ])('empty file: %s', async (_name, input) => {
    for (const chunkSize of [0, 1]) expect((await headerError(input, chunkSize)).code).toBe('empty_file');
  });

  it.each([
    ['malformed quoting', 'event_id,"event_type"x",occurred_at\n'],
    ['invalid UTF-8', Buffer.from('event_id,event_type,occurred_at,\xff\n', 'latin1')],
    ['NUL byte', 'event_id,event_type,occurred_at,a\u0000\n'],
  ])('bad header: %s', async (_name, input) => {
    expect((await headerError(input)).code).toBe('bad_header');
  });

  it('an unterminated quote in the header fails the file as such', async () => {
    const e = await headerError('\nevent_id,"event_type,occurred_at\n');
    expect(e.code).toBe('unterminated_quote');
    expect(e.message).toMatch(/opened on line 2/);
  });

  it('a 1–2 byte file that only looks like a BOM start is data, not a BOM', async () => {
    expect((await headerError(Buffer.from([0xef]))).code).toBe('bad_header'); // invalid UTF-8
  });
});
