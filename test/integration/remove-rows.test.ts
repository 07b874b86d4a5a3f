// Undo a load (DELETE /uploads/:id/rows) end to end over real HTTP, s3rver, Postgres, the worker and the
// dispatcher: exactly the upload's rows go (not another upload's in the same table), rowsRemovedAt is
// recorded, the upload.rows_removed event reaches a subscribed endpoint over real HTTP, the refusals
// (upsert, replace, dry run, not completed) are 409 with their codes, another tenant's upload is 404,
// and `stream-api remove-rows ID` does it from a real process.
import { spawn } from 'node:child_process';
import type { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { FormatRegistry } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CopySink } from '../../src/ingest/copy-sink.ts';
import type { WorkerHandle } from '../../src/ingest/worker.ts';
import { EVENT_TYPES } from '../../src/notify/event-types.ts';
import { createEndpoint, runDispatcher } from '../helpers/endpoints.ts';
import { useApi } from '../helpers/env.ts';
import { generateCsv } from '../helpers/generate.ts';
import { request, sendJson, upload } from '../helpers/http.ts';
import { startReceiver, type Receiver } from '../helpers/receiver.ts';
import { sinkGate } from '../helpers/sinks.ts';
import { countRows, startTestWorker, waitForStatus } from '../helpers/worker.ts';

FormatRegistry.Set('uuid', (v) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(v));
FormatRegistry.Set('date-time', (v) => !Number.isNaN(Date.parse(v)));

const BIN = fileURLToPath(new URL('../../bin/stream-api.mjs', import.meta.url));
const ctx = useApi({ WEBHOOK_ALLOWED_CIDRS: '127.0.0.0/8', WEBHOOK_BACKOFF_BASE_MS: '50', WEBHOOK_TIMEOUT_MS: '2000' });
let key: string;
let tenantId: string;
let worker: WorkerHandle;
let stopDispatcher: () => Promise<void>;
let receiver: Receiver;
let endpointSecret: string;
/** the next load's COPY goes through this, when set */
let hook: ((sink: CopySink) => Writable) | null = null;

beforeAll(async () => {
  ({ key, tenantId } = await ctx.t.newTenantKey());
  worker = await startTestWorker(ctx.t, { wrapSink: (sink) => (hook ? hook(sink) : sink) });
  stopDispatcher = await runDispatcher(ctx.t);
  receiver = await startReceiver();
  ({ secret: endpointSecret } = await createEndpoint(ctx.api, key, { url: receiver.url, eventTypes: ['upload.rows_removed'] }));
});
afterAll(async () => {
  await stopDispatcher?.();
  await worker?.stop();
  await receiver?.close();
});

const url = () => ctx.api.url;
const table = (name: string) => `"t_${tenantId.replaceAll('-', '')}".${name}`;
const removeRows = (id: string, k = key) => request(url(), k, 'DELETE', `/uploads/${id}/rows`);

async function load(csv: string | Buffer, fields: Record<string, string> = {}) {
  const res = await upload(url(), key, { file: { content: csv }, fields });
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  const id = res.body.uploadId as string;
  const state = await waitForStatus(ctx.t, id, ['completed', 'failed']);
  return { id, state };
}

/** The rows_removed payloads the endpoint received, verified with its secret. */
function removedPayloads(): Record<string, unknown>[] {
  const wh = new Webhook(endpointSecret);
  return receiver.requests.map((r) => wh.verify(r.body, r.headers as Record<string, string>) as Record<string, unknown>);
}

describe('webhook_events', () => {
  it('removes exactly the upload\'s rows, records rowsRemovedAt, and the event reaches the endpoint; a repeat changes nothing', async () => {
    const a = await load(generateCsv(120));
    const b = await load(generateCsv(80));
    expect([a.state.status, b.state.status]).toEqual(['completed', 'completed']);

    const res = await removeRows(a.id);
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({ uploadId: a.id, dataset: 'webhook_events', rowsRemoved: 120 });
    expect(await countRows(ctx.t, a.id)).toEqual({ total: 0, distinct: 0 });
    expect(await countRows(ctx.t, b.id)).toEqual({ total: 80, distinct: 80 });
    const status = (await request(url(), key, 'GET', `/uploads/${a.id}`)).body;
    expect(status).toMatchObject({ status: 'completed', rowsProcessed: 120, rowsRemoved: 120, rowsRemovedAt: res.body.rowsRemovedAt });
    expect((await request(url(), key, 'GET', `/uploads/${b.id}`)).body).toMatchObject({ rowsRemoved: null, rowsRemovedAt: null });

    const [delivered] = await receiver.waitForRequests(1);
    expect(delivered).toBeDefined();
    const payloads = removedPayloads();
    expect(payloads).toEqual([{ type: 'upload.rows_removed', uploadId: a.id, dataset: 'webhook_events', rowsRemoved: 120, timestamp: res.body.rowsRemovedAt }]);
    expect(Value.Check(EVENT_TYPES.find((e) => e.name === 'upload.rows_removed')!.schema, payloads[0])).toBe(true);

    // Idempotent: the first removal's answer, no second event.
    const again = await removeRows(a.id);
    expect(again.status).toBe(200);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.body).toEqual(res.body);
    const { rows } = await ctx.t.pool.query(`SELECT count(*)::int AS n FROM outbox_events WHERE upload_id = $1 AND event_type = 'upload.rows_removed'`, [a.id]);
    expect(rows[0].n).toBe(1);
    expect(await countRows(ctx.t, b.id)).toEqual({ total: 80, distinct: 80 });
  });

  it('another tenant\'s upload is 404 and keeps its rows; a malformed id is 404', async () => {
    const mine = await load(generateCsv(10));
    const other = await ctx.t.newTenantKey();
    const res = await removeRows(mine.id, other.key);
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('not_found');
    expect(await countRows(ctx.t, mine.id)).toEqual({ total: 10, distinct: 10 });
    expect((await removeRows('not-a-uuid')).status).toBe(404);
    expect((await removeRows('00000000-0000-4000-8000-000000000000')).status).toBe(404);
  });
});

describe('a tenant dataset', () => {
  const items = {
    name: 'items',
    columns: [{ name: 'code', type: 'text', required: true }, { name: 'qty', type: 'integer' }],
    key: ['code'],
  };

  it('removes the rows an append loaded, not another upload\'s; rows a later upsert took over stay', async () => {
    expect((await sendJson(url(), key, 'POST', '/datasets', items)).status).toBe(201);
    const a = await load('code,qty\nk1,1\nk2,2\nk3,3\n', { dataset: 'items' });
    const b = await load('code,qty\nk4,4\nk5,5\n', { dataset: 'items' });
    // the upsert updates k2: that row is now the upsert's (upload_id is the last writer's)
    const c = await load('code,qty\nk2,20\n', { dataset: 'items', mode: 'upsert' });
    expect([a.state.status, b.state.status, c.state.status]).toEqual(['completed', 'completed', 'completed']);

    const res = await removeRows(a.id);
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({ uploadId: a.id, dataset: 'items', rowsRemoved: 2 });
    const { rows } = await ctx.t.pool.query(`SELECT code, qty, upload_id FROM ${table('items')} ORDER BY code`);
    expect(rows).toEqual([
      { code: 'k2', qty: 20, upload_id: c.id },
      { code: 'k4', qty: 4, upload_id: b.id },
      { code: 'k5', qty: 5, upload_id: b.id },
    ]);
    await waitForPayload(a.id);
  });

  it('refuses upsert, replace, dry run and failed loads with 409 and a stable code; nothing is removed', async () => {
    const upsert = await load('code,qty\nu1,1\n', { dataset: 'items', mode: 'upsert' });
    const replace = await load('code,qty\nr1,1\nr2,2\n', { dataset: 'items', mode: 'replace' });
    const dry = await load('code,qty\nd1,1\n', { dataset: 'items', dryRun: 'true' });
    const failed = await load('code,qty\nf1,1\n"f2,2\n', { dataset: 'items' });
    expect(failed.state.status).toBe('failed');
    const before = (await ctx.t.pool.query(`SELECT * FROM ${table('items')} ORDER BY code`)).rows;
    const cases: [string, string, string][] = [
      [upsert.id, 'rows_not_removable', 'mode=upsert'],
      [replace.id, 'rows_not_removable', 'mode=replace'],
      [dry.id, 'dry_run_loaded_nothing', 'dry run'],
      [failed.id, 'upload_not_completed', 'the upload is failed'],
    ];
    for (const [id, code, message] of cases) {
      const res = await removeRows(id);
      expect(res.status, code).toBe(409);
      expect(res.body.error.code).toBe(code);
      expect(res.body.error.message).toContain(message);
      expect((await request(url(), key, 'GET', `/uploads/${id}`)).body.rowsRemovedAt).toBeNull();
    }
    expect((await ctx.t.pool.query(`SELECT * FROM ${table('items')} ORDER BY code`)).rows).toEqual(before);
  });

  it('an upload still processing is refused at once (409 upload_not_completed), without waiting for its load', async () => {
    const gate = sinkGate();
    hook = gate.wrap;
    const res = await upload(url(), key, { file: { content: 'code,qty\np1,1\n' }, fields: { dataset: 'items' } });
    await gate.reached; // the load transaction holds the upload's row
    hook = null;
    try {
      const started = Date.now();
      const refused = await removeRows(res.body.uploadId);
      expect(refused.status).toBe(409);
      expect(refused.body.error.code).toBe('upload_not_completed');
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      gate.open();
    }
    expect((await waitForStatus(ctx.t, res.body.uploadId, ['completed', 'failed'])).status).toBe('completed');
  });
});

describe('CLI', () => {
  it('`stream-api remove-rows ID` removes the rows (exit 0); a refused one exits 1 with the code', async () => {
    const target = await load(generateCsv(25));
    const env = { ...process.env, STREAM_API_URL: url(), STREAM_API_KEY: key };
    const ok = await runCli(['remove-rows', target.id, '--json'], env);
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ uploadId: target.id, dataset: 'webhook_events', rowsRemoved: 25 });
    expect(await countRows(ctx.t, target.id)).toEqual({ total: 0, distinct: 0 });

    const text = await runCli(['remove-rows', target.id], env);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/removed\s+25 rows/);

    const dry = await load(generateCsv(3), { dryRun: 'true' });
    const refused = await runCli(['remove-rows', dry.id], env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('error: dry_run_loaded_nothing');
  });
});

async function waitForPayload(uploadId: string): Promise<void> {
  const until = Date.now() + 15_000;
  while (!removedPayloads().some((p) => p.uploadId === uploadId)) {
    if (Date.now() > until) throw new Error(`no upload.rows_removed for ${uploadId} reached the endpoint`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function runCli(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
