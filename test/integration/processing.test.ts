// The process-upload task end to end: real HTTP upload → s3rver → worker → COPY into Postgres.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WorkerHandle } from '../../src/ingest/worker.ts';
import { breakRows } from '../helpers/bad-rows.ts';
import { createTestEnv, startApi, type TestEnv } from '../helpers/env.ts';
import { request, upload } from '../helpers/http.ts';
import { countRows, startTestWorker, uploadState, waitForStatus } from '../helpers/worker.ts';
import { generateCsv } from '../helpers/generate.ts';
import { waitFor } from '../helpers/wait.ts';

const generate = (rows: number) => generateCsv(rows).toString();

let t: TestEnv;
let api: Awaited<ReturnType<typeof startApi>>;
let worker: WorkerHandle;
let key: string;

beforeAll(async () => {
  t = await createTestEnv({ WORKER_CONCURRENCY: '2' });
  api = await startApi(t);
  worker = await startTestWorker(t);
  ({ key } = await t.newTenantKey());
});
afterAll(async () => {
  await worker?.stop();
  await api?.close();
  await t?.close();
});

async function send(content: string | Buffer, fields: Record<string, string> = {}) {
  const res = await upload(api.url, key, { file: { content }, fields });
  expect(res.status).toBe(202);
  return res.body.uploadId as string;
}

async function objectKey(uploadId: string): Promise<string> {
  return (await t.pool.query('SELECT object_key FROM uploads WHERE id = $1', [uploadId])).rows[0].object_key;
}

async function loadedLines(uploadId: string): Promise<number[]> {
  const { rows } = await t.pool.query('SELECT line_number FROM webhook_events WHERE upload_id = $1 ORDER BY 1', [uploadId]);
  return rows.map((r) => Number(r.line_number));
}

describe('processing', () => {
  it('loads a 50k-row file with ~1% bad rows of every kind; errors.csv round-trips', async () => {
    const file = breakRows(generate(50_000));
    expect(new Set(file.broken.values()).size).toBeGreaterThanOrEqual(12);
    const id = await send(file.csv);
    const state = await waitForStatus(t, id, ['completed', 'failed']);
    expect(state).toMatchObject({ status: 'completed', rows_processed: 50_000 - file.broken.size, rows_failed: file.broken.size });
    expect(await countRows(t, id)).toEqual({ total: 50_000 - file.broken.size, distinct: 50_000 - file.broken.size });
    // The object is deleted just after the commit.
    await waitFor(async () => (await uploadState(t, id)).object_deleted_at !== null);
    expect(await t.listObjects('uploads/')).not.toContain(await objectKey(id));

    // Every broken line is recorded with the code of the way it was broken; no valid line is.
    const { rows: errors } = await t.pool.query('SELECT line, code FROM upload_errors WHERE upload_id = $1 ORDER BY line', [id]);
    expect(new Map(errors.map((e) => [Number(e.line), e.code]))).toEqual(file.broken);

    // The JSON view pages through the same rows.
    const seen: number[] = [];
    let cursor: string | null = null;
    do {
      const res = await request(api.url, key, 'GET', `/uploads/${id}/errors?limit=200${cursor ? `&cursor=${cursor}` : ''}`);
      expect(res.status).toBe(200);
      expect(res.body.rowsFailed).toBe(file.broken.size);
      seen.push(...res.body.items.map((e: { line: number }) => e.line));
      cursor = res.body.nextCursor;
    } while (cursor);
    expect(seen).toEqual([...file.broken.keys()]);

    // errors.csv: original header + _line,_error; fix each line and upload it again → all load.
    const csv = await request(api.url, key, 'GET', `/uploads/${id}/errors.csv`);
    expect(csv.status).toBe(200);
    expect(csv.headers['content-type']).toContain('text/csv');
    const [header, ...records] = csv.text.trimEnd().split('\n');
    expect(header).toBe(`${file.header},_line,_error`);
    expect(records).toHaveLength(file.broken.size);
    const fixed = records.map((record) => {
      const [, line, error] = /,(\d+),("(?:[^"]|"")*"|[^,]*)$/.exec(record)!;
      expect(error).toContain(file.broken.get(Number(line)));
      return `${file.original.get(Number(line))},${line},${error}`;
    });
    const again = await send([header, ...fixed].join('\n') + '\n');
    const second = await waitForStatus(t, again, ['completed', 'failed']);
    expect(second).toMatchObject({ status: 'completed', rows_processed: file.broken.size, rows_failed: 0 });
    const status = await request(api.url, key, 'GET', `/uploads/${again}`);
    expect(status.body.unknownColumns).toEqual(['_line', '_error']);
    expect(status.headers['retry-after']).toBeUndefined();
  });

  it('handles RFC 4180 corner cases, a BOM and CRLF line endings', async () => {
    const u = '0b7f2c4e-1111-4a2b-a333-12345678900';
    const csv =
      '\uFEFF Occurred_At ,EVENT_ID,event_type,payload,currency,extra\r\n' +
      `2025-01-01T00:00:00Z,${u}1,"quoted, comma","{""a"":""x,y""}",USD,ignored\r\n` +
      `2025-01-01T00:00:01+02:00,${u}2,"multi\r\nline","{""note"":""a\\nb"",\n""n"":1}",,x\r\n` +
      `  2025-01-01 00:00:02  ,${u}3,  trimmed  ,,EUR,x\r\n` +
      `2025-01-01T00:00:03.123456Z,${u}4,"""doubled"" quotes",[],GBP,x`; // no final newline
    const id = await send(csv);
    const state = await waitForStatus(t, id, ['completed', 'failed']);
    expect(state).toMatchObject({ status: 'completed', rows_processed: 4, rows_failed: 0 });
    const { rows } = await t.pool.query(
      `SELECT line_number, event_id, event_type, payload, currency, source, occurred_at
         FROM webhook_events WHERE upload_id = $1 ORDER BY line_number`,
      [id],
    );
    expect(rows.map((r) => [Number(r.line_number), r.event_type, r.payload, r.currency, r.source])).toEqual([
      [2, 'quoted, comma', { a: 'x,y' }, 'USD', null],
      [3, 'multi\r\nline', { note: 'a\nb', n: 1 }, null, null],
      [6, 'trimmed', null, 'EUR', null],
      [7, '"doubled" quotes', [], 'GBP', null],
    ]);
    expect(rows[1].occurred_at.toISOString()).toBe('2024-12-31T22:00:01.000Z');
    expect((await request(api.url, key, 'GET', `/uploads/${id}`)).body.unknownColumns).toEqual(['extra']);
  });

  it('completes a header-only file with 0 rows and fails an empty file with a clear code', async () => {
    const headerOnly = await send('event_id,event_type,occurred_at\n');
    expect(await waitForStatus(t, headerOnly, ['completed', 'failed'])).toMatchObject({ status: 'completed', rows_processed: 0 });

    const empty = await send('');
    const failed = await waitForStatus(t, empty, ['completed', 'failed']);
    expect(failed).toMatchObject({ status: 'failed', error_code: 'empty_file' });
    const res = await request(api.url, key, 'GET', `/uploads/${empty}`);
    expect(res.body.error).toEqual({ code: 'empty_file', message: expect.any(String) });
  });

  it('fails at once, naming them, when required columns are missing; nothing is loaded', async () => {
    const id = await send('event_type,source\ninvoice.paid,stripe\n');
    const state = await waitForStatus(t, id, ['completed', 'failed']);
    expect(state).toMatchObject({ status: 'failed', error_code: 'missing_columns', rows_processed: 0 });
    expect(state.error).toContain('event_id');
    expect(state.error).toContain('occurred_at');
    expect(await countRows(t, id)).toEqual({ total: 0, distinct: 0 });
    expect(state.object_deleted_at).toBeNull(); // kept for a retry
    expect(await t.listObjects('uploads/')).toContain(await objectKey(id));
  });

  it('commits no row when the error budget is exceeded (count or ratio)', async () => {
    const file = breakRows(generate(5_000)); // 50 bad rows
    const budgets: Record<string, string>[] = [{ maxErrors: '10' }, { maxErrorRatio: '0.005' }];
    for (const fields of budgets) {
      const id = await send(file.csv, fields);
      const state = await waitForStatus(t, id, ['completed', 'failed']);
      expect(state).toMatchObject({ status: 'failed', error_code: 'error_budget_exceeded', rows_processed: 0 });
      expect(await countRows(t, id)).toEqual({ total: 0, distinct: 0 });
    }
    const within = await send(file.csv, { maxErrors: '50', maxErrorRatio: '0.011' });
    expect(await waitForStatus(t, within, ['completed', 'failed'])).toMatchObject({ status: 'completed', rows_failed: 50 });
  });

  it('is idempotent: running the job again after it committed loads nothing twice', async () => {
    const id = await send(generate(2_000));
    await waitForStatus(t, id, ['completed']);
    // The object is deleted after the commit; the state to compare is the settled one.
    await waitFor(async () => (await uploadState(t, id)).object_deleted_at !== null, 30_000, 'the object deleted');
    const before = await uploadState(t, id);
    await t.pool.query(
      `SELECT graphile_worker.add_job('process-upload', json_build_object('uploadId', $1::text), job_key => 'upload:' || $1)`,
      [id],
    );
    await new Promise((r) => setTimeout(r, 2500));
    expect((await t.jobsFor(id)).length).toBe(0); // the re-run finished (as a no-op)
    expect(await countRows(t, id)).toEqual({ total: 2_000, distinct: 2_000 });
    expect(await uploadState(t, id)).toEqual(before);
    // Its events: the one attempt's start and outcome; the no-op re-run wrote none.
    const { rows } = await t.pool.query('SELECT event_type FROM outbox_events WHERE upload_id = $1 ORDER BY seq', [id]);
    expect(rows).toEqual([{ event_type: 'upload.processing' }, { event_type: 'upload.completed' }]);
  });

  it('loads the acceptance scenario: 200k rows over HTTP, count matches, object deleted', async () => {
    const id = await send(generate(200_000));
    const state = await waitForStatus(t, id, ['completed', 'failed'], 120_000);
    expect(state.status).toBe('completed');
    const { rows } = await t.pool.query('SELECT count(*)::int AS n FROM webhook_events WHERE upload_id = $1', [id]);
    expect(rows[0].n).toBe(200_000);
    await waitFor(async () => (await uploadState(t, id)).object_deleted_at !== null);
    expect(await t.listObjects('uploads/')).not.toContain(await objectKey(id));
    const lines = await loadedLines(id);
    expect(lines[0]).toBe(2);
    expect(lines.at(-1)).toBe(200_001);
  }, 150_000);
});

describe('every line of the file is accounted for', () => {
  const HEADER = 'event_id,event_type,source,customer_id,amount_cents,currency,occurred_at,payload\n';
  /** A valid row whose values need no quotes, so no later quote can close an open one. */
  const row = (i: number, currency = 'USD') =>
    `98ebcb82-034f-4ba5-a41e-${String(i).padStart(12, '0')},invoice.paid,stripe,cus_${i},${i},${currency},2025-01-01T00:00:00Z,{}\n`;
  const unclosed = (i: number) => row(i).replace(',stripe,', ',"never closed,');

  it('a quote never closed fails the upload (unterminated_quote, naming its line); no row is committed', async () => {
    const small = await send(HEADER + row(1) + unclosed(2) + row(3) + row(4) + row(5));
    const many: string[] = [HEADER, row(1), unclosed(2)];
    for (let i = 3; i < 220_003; i++) many.push(row(i));
    const big = await send(many.join('')); // ~20 MB
    for (const id of [small, big]) {
      const state = await waitForStatus(t, id, ['completed', 'failed'], 60_000);
      expect(state).toMatchObject({ status: 'failed', error_code: 'unterminated_quote', rows_processed: 0 });
      expect(state.error).toMatch(/quote opened on line 3 is never closed/);
      expect(await countRows(t, id)).toEqual({ total: 0, distinct: 0 });
      expect(state.object_deleted_at).toBeNull(); // kept: the user may fix it (or retry after a fix of ours)
    }
  }, 90_000);

  it('a record over the size cap counts every line it swallowed, so an error budget sees them', async () => {
    // 16 MiB is the cap: a quote closed only after ~20 MB of lines
    const lines: string[] = [HEADER, row(1), unclosed(2)];
    for (let i = 3; i < 220_003; i++) lines.push(row(i));
    lines.push('",x\n', row(220_004));
    const id = await send(lines.join(''), { maxErrorRatio: '0.5' });
    const state = await waitForStatus(t, id, ['completed', 'failed'], 60_000);
    expect(state).toMatchObject({ status: 'failed', error_code: 'error_budget_exceeded', rows_processed: 0 });
    expect(state.error).toMatch(/220002 of 220004 rows were rejected/);

    const unbudgeted = await send(lines.join(''));
    const done = await waitForStatus(t, unbudgeted, ['completed', 'failed'], 60_000);
    expect(done).toMatchObject({ status: 'completed', rows_processed: 2, rows_failed: 220_002 });
    const { rows } = await t.pool.query('SELECT line, code FROM upload_errors WHERE upload_id = $1', [unbudgeted]);
    expect(rows).toEqual([{ line: 3, code: 'record_too_large' }]);
  }, 120_000);

  it('errors.csv starts with the header the loader used (not a blank first line) and round-trips', async () => {
    const id = await send('\n' + HEADER + row(1) + row(2, 'usd'));
    expect(await waitForStatus(t, id, ['completed', 'failed'])).toMatchObject({ status: 'completed', rows_processed: 1, rows_failed: 1 });
    const csv = await request(api.url, key, 'GET', `/uploads/${id}/errors.csv`);
    const [header, record] = csv.text.trimEnd().split('\n');
    expect(header).toBe(`${HEADER.trimEnd()},_line,_error`);
    expect(record).toMatch(/^98ebcb82-034f-4ba5-a41e-000000000002,.*,usd,.*,4,"?pattern/);
    const again = await send(`${header}\n${record!.replace(',usd,', ',USD,')}\n`);
    expect(await waitForStatus(t, again, ['completed', 'failed'])).toMatchObject({ status: 'completed', rows_processed: 1, rows_failed: 0 });
  });
});

