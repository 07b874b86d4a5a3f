// The client commands as a user runs them: `node bin/stream-api.mjs …` child processes against a real
// API, worker and dispatcher on loopback. Output is compared with what the API itself answers.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WorkerHandle } from '../../src/ingest/worker.ts';
import { startDispatcher, type DispatcherHandle } from '../../src/notify/dispatcher.ts';
import { breakRows, type BrokenFile } from '../helpers/bad-rows.ts';
import { createTestEnv, startApi, type TestEnv } from '../helpers/env.ts';
import { request, upload } from '../helpers/http.ts';
import { generateEvents } from '../helpers/generate.ts';
import { waitForDelivery } from '../helpers/outbox.ts';
import { startReceiver, type Receiver } from '../helpers/receiver.ts';
import { countRows, startTestWorker, waitForStatus } from '../helpers/worker.ts';

const BIN = fileURLToPath(new URL('../../bin/stream-api.mjs', import.meta.url));

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The environment of a user's shell: nothing of ours leaks in from the test runner's own env. */
function shellEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.STREAM_API_URL;
  delete env.STREAM_API_KEY;
  return { ...env, ...extra };
}

function runCli(args: string[], env: Record<string, string>): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: shellEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

let t: TestEnv;
let api: Awaited<ReturnType<typeof startApi>>;
let worker: WorkerHandle;
let dispatcher: DispatcherHandle;
let receiver: Receiver;
let me: { tenantId: string; key: string };
let dir: string;
let goodCsv: string;
let good: BrokenFile;
let missingColumnCsv: string;
/** STREAM_API_URL / STREAM_API_KEY for the CLI */
let cliEnv: Record<string, string>;

const cli = (...args: string[]) => runCli(args, cliEnv);
const get = (p: string) => request(api.url, me.key, 'GET', p);

beforeAll(async () => {
  t = await createTestEnv({ WEBHOOK_ALLOWED_CIDRS: '127.0.0.0/8', WEBHOOK_BACKOFF_BASE_MS: '20', WEBHOOK_TIMEOUT_MS: '1000' });
  api = await startApi(t);
  worker = await startTestWorker(t);
  dispatcher = await startDispatcher({ pool: t.pool, config: t.config, logger: t.logger, databaseUrl: t.databaseUrl });
  receiver = await startReceiver();
  me = await t.newTenantKey();
  cliEnv = { STREAM_API_URL: api.url, STREAM_API_KEY: me.key };

  dir = await mkdtemp(path.join(os.tmpdir(), 'stream-api-cli-'));
  const raw = path.join(dir, 'raw.csv');
  await generateEvents(20_000, raw);
  const { readFile } = await import('node:fs/promises');
  good = breakRows(await readFile(raw, 'utf8'));
  goodCsv = path.join(dir, 'events.csv');
  await writeFile(goodCsv, good.csv);
  missingColumnCsv = path.join(dir, 'no-event-id.csv');
  await writeFile(missingColumnCsv, 'event_type,occurred_at\ninvoice.paid,2025-01-01T00:00:00Z\n');
});

afterAll(async () => {
  await dispatcher?.stop();
  await worker?.stop();
  await api?.close();
  await receiver?.close();
  await t?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('upload', () => {
  it('--wait --json: the JSON summary of the load, exit 0; piped stderr has no progress bars', async () => {
    const res = await cli('upload', goodCsv, '--wait', '--json');
    expect(res.code, res.stderr).toBe(0);
    const summary = JSON.parse(res.stdout);
    const rejected = good.broken.size;
    expect(summary).toMatchObject({
      status: 'completed',
      rowsLoaded: good.dataRows - rejected,
      rowsRejected: rejected,
      error: null,
      upload: { status: 'completed', filename: 'events.csv', sizeBytes: good.csv.length },
    });
    expect(summary.durationMs).toBeGreaterThanOrEqual(0);
    expect(summary.elapsedMs).toBeGreaterThanOrEqual(summary.uploadMs);
    expect((await countRows(t, summary.uploadId)).total).toBe(summary.rowsLoaded);
    const status = await get(`/uploads/${summary.uploadId}`);
    expect(summary.upload).toMatchObject({ rowsProcessed: status.body.rowsProcessed, rowsFailed: status.body.rowsFailed, sha256: status.body.sha256 });

    expect(res.stderr).not.toContain('\r');
    expect(res.stderr).not.toContain('█');
    expect(res.stderr.trim().split('\n').length).toBeLessThanOrEqual(12);
  });

  it('piped, without --json: a few plain lines on stderr, the summary on stdout', async () => {
    const res = await cli('upload', goodCsv, '--wait');
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/^upload +[0-9a-f-]{36}$/m);
    expect(res.stdout).toMatch(/^status +completed$/m);
    expect(res.stdout).toContain(`loaded    ${(good.dataRows - good.broken.size).toLocaleString('en-US')} rows`);
    expect(res.stdout).toMatch(/^rate +[\d,]+ rows\/s$/m);
    expect(res.stderr).toMatch(/^uploading events\.csv/m);
    expect(res.stderr).not.toContain('\r');
  });

  it('without --wait: prints the id (or the 202 body with --json) and returns at once', async () => {
    const plain = await cli('upload', goodCsv);
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stdout.trim()).toMatch(/^[0-9a-f-]{36}$/);
    const json = await cli('upload', goodCsv, '--json', '--dataset', 'webhook_events');
    expect(json.code, json.stderr).toBe(0);
    const body = JSON.parse(json.stdout);
    expect(body).toEqual({ uploadId: expect.any(String), status: 'uploaded', statusUrl: `/uploads/${body.uploadId}` });
    await waitForStatus(t, body.uploadId, ['completed']);
    await waitForStatus(t, plain.stdout.trim(), ['completed']);
  });

  it('an upload that fails (missing required column) → exit 1 with the error code', async () => {
    const res = await cli('upload', missingColumnCsv, '--wait', '--json');
    expect(res.code).toBe(1);
    const summary = JSON.parse(res.stdout);
    expect(summary).toMatchObject({ status: 'failed', rowsLoaded: 0, error: { code: 'missing_columns' } });
    expect(summary.error.message).toContain('event_id');
    expect(res.stderr).toContain('upload failed: missing_columns:');

    const human = await cli('upload', missingColumnCsv, '--wait');
    expect(human.code).toBe(1);
    expect(human.stdout).toMatch(/^error +missing_columns: /m);
  });

  it('an option the API refuses, on a multi-MB file: exit 1 with its code, nothing stored', async () => {
    const { key, tenantId } = await t.newTenantKey();
    const res = await runCli(['upload', goodCsv, '--callback', 'http://169.254.169.254/hook', '--json'], { ...cliEnv, STREAM_API_KEY: key });
    expect(res.code).toBe(1);
    expect(JSON.parse(res.stdout)).toEqual({
      error: { code: 'invalid_callback_url', message: expect.stringContaining('link-local'), status: 400 },
    });
    expect(res.stderr).toContain('error: invalid_callback_url:');
    const unknown = await runCli(['upload', goodCsv, '--dataset', 'nope'], { ...cliEnv, STREAM_API_KEY: key });
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('error: unknown_dataset: unknown dataset "nope"');
    expect((await t.pool.query('SELECT 1 FROM uploads WHERE tenant_id = $1', [tenantId])).rowCount).toBe(0);
  });
});

describe('reading uploads', () => {
  let completedId: string;
  let failedId: string;

  beforeAll(async () => {
    const done = await upload(api.url, me.key, { file: { path: goodCsv } });
    const failed = await upload(api.url, me.key, { file: { path: missingColumnCsv } });
    completedId = done.body.uploadId;
    failedId = failed.body.uploadId;
    await waitForStatus(t, completedId, ['completed']);
    await waitForStatus(t, failedId, ['failed']);
  });

  it('status ID --json is the API body; without --json, readable fields', async () => {
    const [json, human, api_] = await Promise.all([cli('status', completedId, '--json'), cli('status', failedId), get(`/uploads/${completedId}`)]);
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual(api_.body);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^status +failed$/m);
    expect(human.stdout).toMatch(/^error +missing_columns: missing required column/m);
  });

  it('list --json is the API page; --status and --limit pass through', async () => {
    const [all, failedOnly, apiAll, apiFailed] = await Promise.all([
      cli('list', '--json'),
      cli('list', '--status', 'failed', '--limit', '1', '--json'),
      get('/uploads'),
      get('/uploads?status=failed&limit=1'),
    ]);
    expect(all.code, all.stderr).toBe(0);
    expect(JSON.parse(all.stdout)).toEqual(apiAll.body);
    expect(JSON.parse(failedOnly.stdout)).toEqual(apiFailed.body);
    expect(apiFailed.body.items).toHaveLength(1);
    expect(apiFailed.body.nextCursor).not.toBeNull();

    const human = await cli('list', '--limit', '3');
    expect(human.stdout.split('\n')[0]).toMatch(/^ID +STATUS +DATASET +ROWS/);
    expect(human.stderr).toMatch(/^more: stream-api list --cursor \S+$/m);
  });

  it('errors ID --csv is the API CSV byte for byte; --json has every rejected row', async () => {
    const [csv, json, apiCsv, apiJson] = await Promise.all([
      cli('errors', completedId, '--csv'),
      cli('errors', completedId, '--json'),
      get(`/uploads/${completedId}/errors.csv`),
      get(`/uploads/${completedId}/errors?limit=1000`),
    ]);
    expect(csv.code, csv.stderr).toBe(0);
    expect(csv.stdout).toBe(apiCsv.text);
    expect(csv.stdout.split('\n')[0]).toBe(`${good.header},_line,_error`);
    expect(json.code).toBe(0);
    const body = JSON.parse(json.stdout);
    expect(body.items).toEqual(apiJson.body.items);
    expect(body.items).toHaveLength(good.broken.size);
    expect(new Map(body.items.map((r: { line: number; code: string }) => [r.line, r.code]))).toEqual(good.broken);
  });

  it('unknown ids are the API\'s 404, exit 1', async () => {
    const res = await cli('status', '00000000-0000-4000-8000-000000000000', '--json');
    expect(res.code).toBe(1);
    expect(JSON.parse(res.stdout)).toEqual({ error: { code: 'not_found', message: 'upload not found', status: 404 } });
    expect(res.stderr).toContain('error: not_found: upload not found');
  });

  it('retry: a failed upload is queued again; --wait follows it; a completed one is refused', async () => {
    const queued = await cli('retry', failedId, '--json');
    expect(queued.code, queued.stderr).toBe(0);
    const body = JSON.parse(queued.stdout);
    expect(body.uploadId).toBe(failedId);
    expect(['uploaded', 'processing']).toContain(body.status);
    expect(queued.stderr).toContain(`retry queued: upload ${failedId}`);
    await waitForStatus(t, failedId, ['failed']);

    const waited = await cli('retry', failedId, '--wait', '--json');
    expect(waited.code).toBe(1);
    expect(JSON.parse(waited.stdout)).toMatchObject({ uploadId: failedId, status: 'failed', error: { code: 'missing_columns' } });

    const refused = await cli('retry', completedId);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/error: invalid_state: only a failed upload can be retried/);
  });
});

describe('deliveries', () => {
  it('deliveries ID shows the API body; redeliver DELIVERY_ID sends it again', async () => {
    const res = await cli('upload', goodCsv, '--callback', receiver.url, '--wait', '--json');
    expect(res.code, res.stderr).toBe(0);
    const { uploadId } = JSON.parse(res.stdout);
    await receiver.waitForRequests(1);
    const { rows } = await t.pool.query<{ id: string }>('SELECT id FROM deliveries WHERE upload_id = $1', [uploadId]);
    const deliveryId = rows[0]!.id;
    await waitForDelivery(t.pool, deliveryId);

    const [json, human, apiBody] = await Promise.all([
      cli('deliveries', uploadId, '--json'),
      cli('deliveries', uploadId),
      get(`/uploads/${uploadId}/deliveries`),
    ]);
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual(apiBody.body);
    expect(apiBody.body.items[0]).toMatchObject({ deliveryId, status: 'sent', target: receiver.url });
    expect(human.stdout).toContain(`${deliveryId}  upload.completed  webhook  sent  1 attempt`);
    expect(human.stdout).toMatch(/#1 .* scheduled .* 200/);

    const again = await cli('redeliver', deliveryId, '--json');
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ deliveryId, uploadId, status: 'pending' });
    await receiver.waitForRequests(2);
    expect(JSON.parse(receiver.requests[1]!.body)).toMatchObject({ type: 'upload.completed', uploadId });
    expect(receiver.requests[1]!.headers['webhook-id']).toBe(receiver.requests[0]!.headers['webhook-id']);

    const missing = await cli('redeliver', '00000000-0000-4000-8000-000000000000');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('error: not_found: delivery not found');
  });
});

// util-linux `script` runs the CLI on a pseudo-terminal, as a user's shell would.
const hasScript = spawnSync('script', ['--version']).status === 0;

describe('on a terminal', () => {
  it.skipIf(!hasScript)('upload --wait draws the byte bar, then the row bar, in place with \\r', async () => {
    const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
    const command = [process.execPath, BIN, 'upload', goodCsv, '--wait'].map(quote).join(' ');
    const res = await new Promise<CliResult>((resolve, reject) => {
      const child = spawn('script', ['-qec', command, '/dev/null'], { env: shellEnv(cliEnv), stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stdout, stderr: '' }));
    });
    expect(res.code, res.stdout).toBe(0);
    expect(res.stdout).toMatch(/\rupload [█░]{10,} +100\.0% +[\d.]+ \w+ \/ [\d.]+ \w+/);
    expect(res.stdout).toMatch(/\rrows {3}[█░]{10,} +100\.0% +[\d,]+ rows/);
    expect(res.stdout.indexOf('\rupload')).toBeLessThan(res.stdout.indexOf('\rrows'));
    expect(res.stdout).toMatch(/status +completed/);
    expect(res.stdout).not.toMatch(/^uploading /m); // the plain lines are for pipes only
  });
});

describe('configuration and usage', () => {
  it('no key → exit 2 with what to do; a wrong key → exit 1 unauthorized', async () => {
    const none = await runCli(['status', 'x'], { STREAM_API_URL: api.url });
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('no API key: set STREAM_API_KEY or pass --key');
    expect(none.stdout).toBe('');

    const wrong = await runCli(['list', '--key', 'sapi_wrong'], cliEnv);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain('error: unauthorized: missing or invalid API key');
    const wrongUpload = await runCli(['upload', goodCsv, '--key', 'sapi_wrong'], cliEnv);
    expect(wrongUpload.code).toBe(1);
    expect(wrongUpload.stderr).toContain('error: unauthorized');
  });

  it('usage errors → exit 2; flags beat the environment; an unreachable service → exit 1', async () => {
    const results = await Promise.all([
      cli('status'),
      cli('list', '--bogus'),
      cli('list', '--limit', 'ten'),
      cli('upload', path.join(dir, 'nope.csv')),
      cli('errors', 'x', '--csv', '--json'),
      cli('status', 'a', 'b'),
    ]);
    for (const r of results) expect(r.code, r.stderr).toBe(2);
    expect(results[0]!.stderr).toContain('missing ID');
    expect(results[0]!.stderr).toContain('usage: stream-api status ID');
    expect(results[3]!.stderr).toContain('no such file');

    const viaFlag = await runCli(['list', '--json', '--url', api.url, '--key', me.key], { STREAM_API_URL: 'http://127.0.0.1:1', STREAM_API_KEY: 'x' });
    expect(viaFlag.code, viaFlag.stderr).toBe(0);
    const down = await runCli(['list'], { ...cliEnv, STREAM_API_URL: 'http://127.0.0.1:1' });
    expect(down.code).toBe(1);
    expect(down.stderr).toContain('cannot reach the service at http://127.0.0.1:1');
    const help = await cli('upload', '--help');
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('usage: stream-api upload FILE');
  });
});
