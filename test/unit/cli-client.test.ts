// Pure parts of the client commands: config, multipart framing, error bodies, summaries, tables.
import { describe, expect, it } from 'vitest';
import { loadClientConfig } from '../../src/cli/client/config.ts';
import { apiErrorFrom, UsageError } from '../../src/cli/client/errors.ts';
import type { UploadBody } from '../../src/cli/client/events.ts';
import { multipartFrame } from '../../src/cli/client/multipart.ts';
import { fields, table } from '../../src/cli/client/output.ts';
import { describeBytes, describeFile, describeSummary, summarize } from '../../src/cli/client/summary.ts';

describe('loadClientConfig', () => {
  it('flags win over the environment; the default URL is localhost:3002', () => {
    expect(loadClientConfig({}, { STREAM_API_KEY: 'k' })).toEqual({ url: 'http://localhost:3002', key: 'k' });
    expect(loadClientConfig({}, { STREAM_API_KEY: 'k', STREAM_API_URL: 'https://api.example.com/base/' })).toEqual({
      url: 'https://api.example.com/base',
      key: 'k',
    });
    expect(loadClientConfig({ url: 'http://h:1', key: 'f' }, { STREAM_API_KEY: 'k', STREAM_API_URL: 'http://x' })).toEqual({
      url: 'http://h:1',
      key: 'f',
    });
  });

  it('fails fast, with what to do, on a missing key or a bad URL', () => {
    expect(() => loadClientConfig({}, {})).toThrow(UsageError);
    expect(() => loadClientConfig({}, { STREAM_API_KEY: '  ' })).toThrow(/STREAM_API_KEY.*--key/);
    expect(() => loadClientConfig({ url: 'not a url' }, { STREAM_API_KEY: 'k' })).toThrow(/not a valid URL/);
    expect(() => loadClientConfig({ url: 'ftp://h' }, { STREAM_API_KEY: 'k' })).toThrow(/http/);
  });
});

describe('multipartFrame', () => {
  it('Content-Length is exactly head + file + tail, fields before the file, quotes encoded', () => {
    const file = Buffer.from('a,b\n1,2\n');
    const frame = multipartFrame({ dataset: 'webhook_events', callbackUrl: 'https://x/y' }, 'we"ird\r\n.csv', file.length, 'BOUND');
    const body = Buffer.concat([frame.head, file, frame.tail]).toString();
    expect(frame.contentLength).toBe(Buffer.byteLength(body));
    expect(frame.contentType).toBe('multipart/form-data; boundary=BOUND');
    expect(body.indexOf('name="dataset"')).toBeLessThan(body.indexOf('name="file"'));
    expect(body).toContain('filename="we%22ird%0D%0A.csv"');
    expect(body.endsWith('1,2\n\r\n--BOUND--\r\n')).toBe(true);
  });
});

describe('apiErrorFrom', () => {
  it("reads the API's error body, and says something useful about anything else", () => {
    expect(apiErrorFrom(404, '{"error":{"code":"not_found","message":"upload not found"}}')).toMatchObject({
      status: 404,
      code: 'not_found',
      message: 'upload not found',
    });
    expect(apiErrorFrom(502, '<html>\n<b>Bad gateway</b></html>')).toMatchObject({ code: 'http_502', message: '<html> <b>Bad gateway</b></html>' });
    expect(apiErrorFrom(500, '')).toMatchObject({ code: 'http_500', message: 'HTTP 500' });
  });
});

describe('summarize', () => {
  const final: UploadBody = {
    uploadId: 'u1', status: 'completed', dataset: 'webhook_events', filename: 'a.csv', sizeBytes: 2048,
    rowsProcessed: 9_990, rowsFailed: 10, bytesProcessed: 2048, progress: 1, attempt: 1, error: null,
    createdAt: '2025-01-01T00:00:00.000Z', startedAt: '2025-01-01T00:00:01.000Z', completedAt: '2025-01-01T00:00:03.000Z',
  };

  it("prefers the client's own watch of the processing time", () => {
    const s = summarize(final, { uploadMs: 500, elapsedMs: 6000, observedProcessingMs: 4000, waitedMs: 5000 });
    expect(s).toMatchObject({ rowsLoaded: 9_990, rowsRejected: 10, durationMs: 4000, rowsPerSecond: 2500, uploadMs: 500, elapsedMs: 6000 });
  });

  it("falls back to the service's timestamps, then to the time waited", () => {
    expect(summarize(final, { uploadMs: null, elapsedMs: 9, observedProcessingMs: null, waitedMs: 9 }).durationMs).toBe(2000);
    const unstamped = { ...final, startedAt: null };
    const s = summarize(unstamped, { uploadMs: null, elapsedMs: 0, observedProcessingMs: null, waitedMs: 0 });
    expect(s.durationMs).toBe(0);
    expect(s.rowsPerSecond).toBeNull();
  });

  it('the human summary names the error and where the rejected rows are', () => {
    const failed = { ...final, status: 'failed' as const, rowsProcessed: 0, error: { code: 'missing_columns', message: 'missing required column(s): event_id' } };
    const text = describeSummary(summarize(failed, { uploadMs: null, elapsedMs: 1, observedProcessingMs: 1, waitedMs: 1 }));
    expect(text).toContain('error     missing_columns: missing required column(s): event_id');
    expect(text).toContain('stream-api errors u1');
  });

  it('says what an upsert or replace did to the table, and nothing more for an append', () => {
    const timing = { uploadMs: null, elapsedMs: 1, observedProcessingMs: 1, waitedMs: 1 };
    const upsert = { ...final, mode: 'upsert' as const, rowsProcessed: 5, rowsInserted: 2, rowsUpdated: 3 };
    expect(describeSummary(summarize(upsert, timing))).toContain('loaded    5 rows (upsert: 2 inserted, 3 updated)');
    const append = { ...final, mode: 'append' as const, rowsInserted: 9_990, rowsUpdated: 0 };
    expect(describeSummary(summarize(append, timing))).toMatch(/loaded +9,990 rows\n/);
  });
});

describe('the bytes of an upload', () => {
  const base: UploadBody = {
    uploadId: 'u1', status: 'processing', dataset: 'webhook_events', filename: 'a.csv.gz', sizeBytes: 2 * 1024 ** 2,
    rowsProcessed: 0, rowsFailed: 0, bytesProcessed: 1024 ** 2, progress: 0.5, attempt: 1, error: null,
    createdAt: null, startedAt: null, completedAt: null,
  };

  it('a gzip file: stored bytes read of the stored size, and the uncompressed bytes they held', () => {
    const gz = { ...base, compression: 'gzip' as const, uncompressedBytesProcessed: 9 * 1024 ** 2 };
    expect(describeFile(gz)).toBe('a.csv.gz (2.00 MiB gzip)');
    expect(describeBytes(gz)).toBe('1.00 MiB of 2.00 MiB read (compressed), 9.00 MiB uncompressed');
    const text = describeSummary(summarize(gz, { uploadMs: null, elapsedMs: 1, observedProcessingMs: 1, waitedMs: 1 }));
    expect(text).toContain('bytes     1.00 MiB of 2.00 MiB read (compressed), 9.00 MiB uncompressed');
  });

  it('a plain file (or a service that predates compression): no compression shown', () => {
    expect(describeFile(base)).toBe('a.csv.gz (2.00 MiB)');
    expect(describeBytes({ ...base, compression: 'none', uncompressedBytesProcessed: 1024 ** 2 })).toBe('1.00 MiB of 2.00 MiB read');
    expect(describeSummary(summarize(base, { uploadMs: null, elapsedMs: 1, observedProcessingMs: 1, waitedMs: 1 }))).not.toContain('bytes');
  });
});

describe('table and fields', () => {
  it('aligns columns and leaves out null fields', () => {
    expect(table(['ID', 'STATUS'], [['a', 'completed'], ['bbb', 'failed']])).toBe('ID   STATUS\na    completed\nbbb  failed');
    expect(fields([['upload', 'u1'], ['error', null], ['status', 'ok']])).toBe('upload  u1\nstatus  ok');
  });
});
