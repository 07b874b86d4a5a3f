// Input formats end to end: files written with another delimiter, encoding, date spelling, decimal comma
// or relaxed quotes are uploaded over real HTTP (multipart, tus, direct), stored in the embedded S3,
// loaded by the real worker into real PostgreSQL, and read back with SQL; the format is recorded on the
// upload (GET /uploads/:id); a dataset's `format` is the default, an upload's field overrides it.
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import iconv from 'iconv-lite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WorkerHandle } from '../../src/ingest/worker.ts';
import { directClient, putParts } from '../helpers/direct.ts';
import { useApi } from '../helpers/env.ts';
import { rawRequest, request, sendJson, upload } from '../helpers/http.ts';
import { fixtureFiles, FIXTURES_DIR } from '../helpers/infer-fixtures.ts';
import { tusCreate, tusPatch } from '../helpers/tus.ts';
import { startTestWorker, waitForStatus } from '../helpers/worker.ts';

const ctx = useApi();
let key: string;
let tenantId: string;
let worker: WorkerHandle | undefined;

const people = {
  name: 'people',
  columns: [
    { name: 'name', type: 'text', required: true },
    { name: 'city', type: 'text' },
    { name: 'born', type: 'date' },
    { name: 'seen_at', type: 'timestamptz' },
    { name: 'balance', type: 'numeric(10,2)' },
    { name: 'visits', type: 'integer' },
  ],
};

beforeAll(async () => {
  ({ key, tenantId } = await ctx.t.newTenantKey());
  const created = await sendJson(ctx.api.url, key, 'POST', '/datasets', people);
  expect(created.status, created.text).toBe(201);
  // the same columns, whose files are semicolon-separated with European dates and decimal commas by default
  const eu = await sendJson(ctx.api.url, key, 'POST', '/datasets', { ...people, name: 'people_eu', format: { delimiter: ';', dateFormat: 'DD/MM/YYYY', decimalSeparator: ',' } });
  expect(eu.status, eu.text).toBe(201);
  worker = await startTestWorker(ctx.t);
});
afterAll(async () => {
  await worker?.stop();
});

const schema = () => `t_${tenantId.replaceAll('-', '')}`;

async function loaded(uploadId: string, table = 'people') {
  const state = await waitForStatus(ctx.t, uploadId, ['completed', 'failed']);
  const { rows } = await ctx.t.pool.query(
    `SELECT line_number::int AS line, name, city, born::text, to_char(seen_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') AS seen, balance::text, visits
       FROM "${schema()}".${table} WHERE upload_id = $1 ORDER BY line_number`,
    [uploadId],
  );
  const { rows: errors } = await ctx.t.pool.query('SELECT line::int, column_name, code FROM upload_errors WHERE upload_id = $1 ORDER BY line', [uploadId]);
  return { state, rows, errors: errors.map((e) => [e.line, e.column_name, e.code]) };
}

async function send(content: string | Buffer, fields: Record<string, string>): Promise<string> {
  const res = await upload(ctx.api.url, key, { file: { content }, fields: { dataset: 'people', ...fields } });
  expect(res.status, res.text).toBe(202);
  return res.body.uploadId as string;
}

const row = (line: number, name: string, city: string | null, born: string | null, seen: string | null, balance: string | null, visits: number | null) => ({
  line, name, city, born, seen, balance, visits,
});

describe('files in other formats load with the right values', () => {
  it('Windows-1252 with accented names (and € in a value)', async () => {
    const csv = 'name,city,born\r\nJosé Müller,Köln,1980-05-17\r\nFrançoise Lefèvre,Besançon €,\r\nØrjan Åsheim,Tromsø,1975-12-01\r\n';
    const bytes = iconv.encode(csv, 'windows-1252');
    expect(bytes.includes(0xe9) && !bytes.includes(0xc3)).toBe(true); // é is one byte: not UTF-8
    const id = await send(bytes, { encoding: 'windows-1252' });
    const { state, rows } = await loaded(id);
    expect(state).toMatchObject({ status: 'completed', rows_processed: 3, rows_failed: 0 });
    expect(rows.map((r) => [r.name, r.city, r.born])).toEqual([
      ['José Müller', 'Köln', '1980-05-17'],
      ['Françoise Lefèvre', 'Besançon €', null],
      ['Ørjan Åsheim', 'Tromsø', '1975-12-01'],
    ]);
    const status = await request(ctx.api.url, key, 'GET', `/uploads/${id}`);
    expect(status.body.format).toEqual({ delimiter: ',', encoding: 'windows-1252', dateFormat: 'YYYY-MM-DD', decimalSeparator: '.', quotes: 'strict' });
    expect(status.body.uncompressedBytesProcessed).toBe(bytes.length);
  });

  it('semicolons, decimal commas and DD/MM/YYYY dates; bad values rejected per row; errors.csv in semicolons', async () => {
    const csv = [
      'name;city;born;seen_at;balance;visits',
      'Ana;Porto;31/12/1990;01/02/2025 13:45:00+01:00;1234,56;7',
      'Ben;"Lyon; Rhône";29/02/2024;;-0,5;',
      'Cy;;2024-12-31;;;', // ISO when DD/MM/YYYY is stated
      'Di;;;;12.5;', // a decimal point when the comma is stated
      'Ed;;;;;3,0', // integers stay integers
      'Flo;;;31/12/2024 25:00Z;;',
    ].join('\n');
    const id = await send(csv, { delimiter: ';', dateFormat: 'DD/MM/YYYY', decimalSeparator: ',' });
    const { state, rows, errors } = await loaded(id);
    expect(state).toMatchObject({ status: 'completed', rows_processed: 2, rows_failed: 4 });
    expect(rows).toEqual([
      row(2, 'Ana', 'Porto', '1990-12-31', '2025-02-01 12:45', '1234.56', 7),
      row(3, 'Ben', 'Lyon; Rhône', '2024-02-29', null, '-0.50', null),
    ]);
    expect(errors).toEqual([[4, 'born', 'invalid_date'], [5, 'balance', 'invalid_numeric'], [6, 'visits', 'invalid_integer'], [7, 'seen_at', 'invalid_timestamp']]);
    const errorsCsv = await request(ctx.api.url, key, 'GET', `/uploads/${id}/errors.csv`);
    expect(errorsCsv.text.split('\n').slice(0, 2)).toEqual(['name;city;born;seen_at;balance;visits;_line;_error', 'Cy;;2024-12-31;;;;4;"invalid_date: born: ""2024-12-31"" is not a valid date (dates written DD/MM/YYYY)"']);
  });

  it('UTF-16LE with a byte order mark, characters outside Latin-1 included', async () => {
    const csv = 'name,city\r\n王小明,北京\r\nZoë 😀,Łódź\r\n';
    const bytes = iconv.encode(csv, 'utf-16le', { addBOM: true });
    const id = await send(bytes, { encoding: 'utf-16' });
    const { state, rows } = await loaded(id);
    expect(state).toMatchObject({ status: 'completed', rows_processed: 2, rows_failed: 0 });
    expect(rows.map((r) => [r.name, r.city])).toEqual([['王小明', '北京'], ['Zoë 😀', 'Łódź']]);
    // without the stated encoding the same bytes are not read as text: the header fails, nothing loads
    const plain = await loaded(await send(bytes, {}));
    expect(plain.state).toMatchObject({ status: 'failed', rows_processed: 0 });
  });

  it.each([
    ['tab', '\t'],
    ['|', '|'],
  ])('delimiter %s', async (field, d) => {
    const csv = [['name', 'city', 'visits'], ['Ana', ' Porto ', '3'], ['"Bo, Jr"', '"a' + d + 'b"', ''], ['Cy', 'x', 'many']].map((r) => r.join(d)).join('\n') + '\n';
    const id = await send(csv, { delimiter: field });
    const { state, rows, errors } = await loaded(id);
    expect(state).toMatchObject({ status: 'completed', rows_processed: 2, rows_failed: 1 });
    expect(rows.map((r) => [r.name, r.city, r.visits])).toEqual([['Ana', 'Porto', 3], ['Bo, Jr', `a${d}b`, null]]);
    expect(errors).toEqual([[4, 'visits', 'invalid_integer']]);
  });

  it('relaxed quotes: quotes inside unquoted fields are literal; strict rejects those rows', async () => {
    const csv = 'name,city\nAda 5\'10",37°36\'37.8"N\n"Bo ""B""",Oslo\n';
    const relaxed = await loaded(await send(csv, { quotes: 'relaxed' }));
    expect(relaxed.state).toMatchObject({ status: 'completed', rows_processed: 2, rows_failed: 0 });
    expect(relaxed.rows.map((r) => [r.name, r.city])).toEqual([['Ada 5\'10"', '37°36\'37.8"N'], ['Bo "B"', 'Oslo']]);
    const strict = await loaded(await send(csv, {}));
    expect(strict.state).toMatchObject({ status: 'completed', rows_processed: 1, rows_failed: 1 });
    expect(strict.errors).toEqual([[2, 'name', 'malformed_csv']]);
  });
});

describe("a dataset's format is the default; an upload's field overrides it", () => {
  it('people_eu reads semicolons and decimal commas without any field; a field overrides one key only', async () => {
    const def = await request(ctx.api.url, key, 'GET', '/datasets/people_eu');
    expect(def.body.format).toEqual({ delimiter: ';', dateFormat: 'DD/MM/YYYY', decimalSeparator: ',' });
    const byDefault = await upload(ctx.api.url, key, { file: { content: 'name;balance;born\nAna;1,5;31/01/2020\n' }, fields: { dataset: 'people_eu' } });
    const a = await loaded(byDefault.body.uploadId, 'people_eu');
    expect(a.rows.map((r) => [r.name, r.balance, r.born])).toEqual([['Ana', '1.50', '2020-01-31']]);

    const overridden = await upload(ctx.api.url, key, { file: { content: 'name|balance|born\nBo|2,25|01/02/2020\n' }, fields: { dataset: 'people_eu', delimiter: '|' } });
    const b = await loaded(overridden.body.uploadId, 'people_eu');
    expect(b.rows.map((r) => [r.name, r.balance, r.born])).toEqual([['Bo', '2.25', '2020-02-01']]);
    const status = await request(ctx.api.url, key, 'GET', `/uploads/${overridden.body.uploadId}`);
    expect(status.body.format).toEqual({ delimiter: '|', encoding: 'utf-8', dateFormat: 'DD/MM/YYYY', decimalSeparator: ',', quotes: 'strict' });
  });

  it('tus metadata and direct uploads take the same fields', async () => {
    const csv = Buffer.from('name;balance\nTus;3,5\n');
    const { path } = await tusCreate(ctx.api.url, key, csv.length, { dataset: 'people', delimiter: ';', decimalSeparator: ',' });
    expect((await tusPatch(ctx.api.url, key, path, 0, csv)).status).toBe(204);
    const tusId = (await ctx.t.pool.query<{ id: string }>(`SELECT id FROM uploads WHERE tenant_id = $1 AND filename = 'data.csv' ORDER BY seq DESC LIMIT 1`, [tenantId])).rows[0]!.id;
    expect((await loaded(tusId)).rows.map((r) => [r.name, r.balance])).toEqual([['Tus', '3.50']]);

    const direct = directClient(ctx, () => key);
    const file = iconv.encode('name\tcity\nDirect\tMünchen\n', 'latin1');
    const started = await direct.startOk(file, { filename: 'd.csv', dataset: 'people', delimiter: 'tab', encoding: 'latin1' });
    const completed = await direct.complete(started.uploadId, await putParts(started, file));
    expect(completed.status, completed.text).toBe(202);
    expect((await loaded(started.uploadId)).rows.map((r) => [r.name, r.city])).toEqual([['Direct', 'München']]);
  });
});

describe('the built-in webhook_events', () => {
  it('takes the format fields too', async () => {
    const id = '0b7f2c4e-1111-4a2b-a333-00000000f0f0';
    const csv = iconv.encode(`event_id;event_type;occurred_at;source\n${id};facturé;31/12/2024 23:30:00+01:00;"a;b"\n`, 'latin1');
    const res = await upload(ctx.api.url, key, { file: { content: csv }, fields: { delimiter: ';', encoding: 'latin1', dateFormat: 'DD/MM/YYYY' } });
    expect(res.status, res.text).toBe(202);
    expect(await waitForStatus(ctx.t, res.body.uploadId, ['completed', 'failed'])).toMatchObject({ status: 'completed', rows_processed: 1, rows_failed: 0 });
    const { rows } = await ctx.t.pool.query(`SELECT event_type, source, occurred_at FROM webhook_events WHERE upload_id = $1`, [res.body.uploadId]);
    expect(rows.map((r) => [r.event_type, r.source, (r.occurred_at as Date).toISOString()])).toEqual([['facturé', 'a;b', '2024-12-31T22:30:00.000Z']]);
  });
});

describe('infer → create → upload without any field', () => {
  it('every inference fixture loads whole into the dataset proposed for it: its inferred format is the default', async () => {
    const outcomes: string[] = [];
    for (const file of await fixtureFiles()) {
      const bytes = await readFile(path.join(FIXTURES_DIR, file));
      const name = `fx_${file.replace(/\.csv$/, '').replaceAll('-', '_')}`;
      const inferred = await rawRequest(ctx.api.url, { path: `/datasets/infer?name=${name}`, key, headers: { 'content-type': 'application/octet-stream' }, body: bytes });
      expect(inferred.status, inferred.text).toBe(200);
      const created = await sendJson(ctx.api.url, key, 'POST', '/datasets', inferred.body.definition);
      expect(created.status, created.text).toBe(201);
      const sent = await upload(ctx.api.url, key, { file: { content: bytes, filename: file }, fields: { dataset: name } });
      expect(sent.status, sent.text).toBe(202);
      const state = await waitForStatus(ctx.t, sent.body.uploadId, ['completed', 'failed']);
      const { rows } = await ctx.t.pool.query(`SELECT count(*)::int AS n FROM "${schema()}".${name}`);
      outcomes.push(`${file}: ${state.status} ${state.rows_processed} loaded ${state.rows_failed} rejected, ${rows[0].n} in the table`);
      expect(state.error_code).toBeNull();
      expect(state.rows_failed).toBe(0);
      expect(rows[0].n).toBe(state.rows_processed);
      expect(state.rows_processed).toBeGreaterThan(0);
    }
    expect(outcomes).toHaveLength((await fixtureFiles()).length);
  });
});

describe('the CLI', () => {
  it('upload --delimiter --encoding --date-format --decimal-separator --quotes sends the fields', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'formats-cli-'));
    try {
      const file = path.join(dir, 'people.csv');
      await writeFile(file, iconv.encode('name;city;born;balance\nCLI 5\'10";Zürich;24.12.1999;7,25\n', 'windows-1252'));
      const bin = fileURLToPath(new URL('../../bin/stream-api.mjs', import.meta.url));
      const args = [bin, 'upload', file, '--dataset', 'people', '--delimiter', ';', '--encoding', 'cp1252', '--date-format', 'DD.MM.YYYY', '--decimal-separator', ',', '--quotes', 'relaxed', '--json'];
      const env = { ...process.env, STREAM_API_URL: ctx.api.url, STREAM_API_KEY: key };
      const stdout = await new Promise<string>((resolve, reject) => {
        const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'inherit'] });
        let out = '';
        child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
        child.on('error', reject);
        child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`exit ${code}: ${out}`))));
      });
      const { uploadId } = JSON.parse(stdout) as { uploadId: string };
      expect((await loaded(uploadId)).rows.map((r) => [r.name, r.city, r.born, r.balance])).toEqual([['CLI 5\'10"', 'Zürich', '1999-12-24', '7.25']]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('an unsupported field value is a 400 naming the field', () => {
  it.each([
    ['delimiter', ':'],
    ['encoding', 'ebcdic'],
    ['dateFormat', 'YYYYMMDD'],
    ['decimalSeparator', ';'],
    ['quotes', 'none'],
  ])('%s=%s', async (field, value) => {
    const res = await upload(ctx.api.url, key, { file: { content: 'name\nx\n' }, fields: { dataset: 'people', [field]: value } });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('invalid_format');
    expect(res.body.error.message).toMatch(new RegExp(`^${field} `));
    const tus = await tusCreate(ctx.api.url, key, 7, { dataset: 'people', [field]: value }).catch((err: Error) => err);
    expect(String(tus)).toContain('invalid_format');
    const direct = await directClient(ctx, () => key).start({ filename: 'a.csv', size: 7, dataset: 'people', [field]: value });
    expect([direct.status, direct.body.error.code]).toEqual([400, 'invalid_format']);
  });
});
