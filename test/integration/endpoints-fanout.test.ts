// Events fan out to endpoints: real receivers on loopback, the real worker and dispatcher, real
// Postgres. Each endpoint gets exactly the types it subscribes to, signed with its own secret; the
// upload's callbackUrl gets what it got before endpoints existed; expansion is idempotent (twice, two
// dispatchers, a dispatcher killed after expanding); a disabled or later-created endpoint gets nothing.
import { once } from 'node:events';
import { FormatRegistry } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { Webhook } from 'standardwebhooks';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createPool } from '../../src/db/pool.ts';
import { startDispatcher } from '../../src/notify/dispatcher.ts';
import { EVENT_TYPES } from '../../src/notify/event-types.ts';
import { expandAll } from '../../src/notify/expand.ts';
import { findWebhookSecret } from '../../src/notify/secrets.repository.ts';
import { createTestEnv, startApi, type TestApi, type TestEnv } from '../helpers/env.ts';
import { generateCsv } from '../helpers/generate.ts';
import { upload } from '../helpers/http.ts';
import { finishUpload } from '../helpers/outbox.ts';
import { ok, startReceiver, type Received, type Receiver } from '../helpers/receiver.ts';
import { waitFor } from '../helpers/wait.ts';
import { spawnService, startTestWorker, waitForStatus } from '../helpers/worker.ts';

FormatRegistry.Set('uuid', (v) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(v));
FormatRegistry.Set('date-time', (v) => !Number.isNaN(Date.parse(v)));

const WEBHOOK_ENV = { WEBHOOK_ALLOWED_CIDRS: '127.0.0.0/8', WEBHOOK_BACKOFF_BASE_MS: '50', WEBHOOK_TIMEOUT_MS: '2000' };

let t: TestEnv;
let api: TestApi;
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  t = await createTestEnv(WEBHOOK_ENV);
  api = await startApi(t);
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
afterAll(async () => {
  await api?.close();
  await t?.close();
});

async function call(key: string, method: string, path: string, body?: unknown) {
  const res = await fetch(new URL(path, api.url), {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

async function receiver(): Promise<Receiver> {
  const r = await startReceiver();
  cleanups.push(() => r.close());
  return r;
}

async function dispatcher(): Promise<void> {
  const pool = createPool(t.databaseUrl, 'stream-api:test-dispatcher', 5);
  const handle = await startDispatcher({ pool, config: t.config, logger: t.logger, databaseUrl: t.databaseUrl });
  cleanups.push(async () => {
    await handle.stop();
    await pool.end();
  });
}

async function endpoint(key: string, body: Record<string, unknown>): Promise<{ id: string; secret: string }> {
  const res = await call(key, 'POST', '/endpoints', body);
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body;
}

/** Verifies each request with `secret` (standardwebhooks) and returns the payloads; throws on a bad signature. */
function verified(requests: Received[], secret: string): { type: string; uploadId: string }[] {
  const wh = new Webhook(secret);
  return requests.map((r) => wh.verify(r.body, r.headers as Record<string, string>) as { type: string; uploadId: string });
}

const typesOf = (payloads: { type: string }[]) => payloads.map((p) => p.type).sort();
const schemaOf = (type: string) => EVENT_TYPES.find((e) => e.name === type)!.schema;
const settle = () => new Promise((r) => setTimeout(r, 1500)); // long enough for a stray send to arrive

async function deliveriesPerTarget(tenantId: string): Promise<{ event_id: string; target_key: string; n: number }[]> {
  const { rows } = await t.pool.query(
    `SELECT event_id, target_key, count(*)::int AS n FROM deliveries WHERE tenant_id = $1 GROUP BY 1, 2`,
    [tenantId],
  );
  return rows;
}

describe('fan-out', () => {
  it('3 endpoints with different filters: each gets exactly its events, verified with its own secret; callbackUrl as before', async () => {
    const { tenantId, key } = await t.newTenantKey();
    const [all, completedOnly, failuresAndStarts, disabled, callback] = await Promise.all([receiver(), receiver(), receiver(), receiver(), receiver()]);
    const eAll = await endpoint(key, { url: all.url, eventTypes: [] });
    const eCompleted = await endpoint(key, { url: completedOnly.url, eventTypes: ['upload.completed'] });
    const eFailures = await endpoint(key, { url: failuresAndStarts.url, eventTypes: ['upload.failed', 'upload.processing'] });
    await endpoint(key, { url: disabled.url, enabled: false });
    const worker = await startTestWorker(t);
    cleanups.push(() => worker.stop());
    await dispatcher();

    const good = await upload(api.url, key, { file: { content: generateCsv(50) }, fields: { callbackUrl: callback.url } });
    const bad = await upload(api.url, key, {
      file: { content: generateCsv(5).toString() + '"a quote never closed,x\n' },
      fields: { callbackUrl: callback.url },
    });
    expect([good.status, bad.status]).toEqual([202, 202]);
    expect(await waitForStatus(t, good.body.uploadId, ['completed', 'failed'])).toMatchObject({ status: 'completed' });
    expect(await waitForStatus(t, bad.body.uploadId, ['completed', 'failed'])).toMatchObject({ status: 'failed' });

    await Promise.all([all.waitForRequests(4), completedOnly.waitForRequests(1), failuresAndStarts.waitForRequests(3), callback.waitForRequests(2)]);
    await settle();
    const allPayloads = verified(all.requests, eAll.secret);
    expect(typesOf(allPayloads)).toEqual(['upload.completed', 'upload.failed', 'upload.processing', 'upload.processing']);
    expect(typesOf(verified(completedOnly.requests, eCompleted.secret))).toEqual(['upload.completed']);
    expect(typesOf(verified(failuresAndStarts.requests, eFailures.secret))).toEqual(['upload.failed', 'upload.processing', 'upload.processing']);
    expect(disabled.requests).toEqual([]);
    // Each endpoint's secret is its own: another's does not verify.
    expect(() => verified(completedOnly.requests, eAll.secret)).toThrow();
    // Every payload is what GET /event-types describes.
    for (const p of allPayloads) expect(Value.Check(schemaOf(p.type), p), JSON.stringify(p)).toBe(true);

    // The callbackUrl: the outcomes only (no upload.processing), signed with the tenant's secret, as before.
    const tenantSecret = (await findWebhookSecret(t.db, { id: tenantId }))!.webhookSecret;
    const outcomes = verified(callback.requests, tenantSecret);
    expect(typesOf(outcomes)).toEqual(['upload.completed', 'upload.failed']);
    expect(outcomes.find((p) => p.type === 'upload.completed')).toEqual({
      type: 'upload.completed', uploadId: good.body.uploadId, status: 'completed', rowsProcessed: 50, rowsFailed: 0,
      timestamp: expect.any(String),
    });
    expect(outcomes.find((p) => p.type === 'upload.failed')).toMatchObject({
      type: 'upload.failed', uploadId: bad.body.uploadId, status: 'failed', errorCode: 'unterminated_quote',
    });
    // The status response still shows the callbackUrl delivery.
    const status = await call(key, 'GET', `/uploads/${good.body.uploadId}`);
    expect(status.body.delivery).toMatchObject({ status: 'sent', attempts: 1 });
    // One delivery per event and target.
    const perTarget = await deliveriesPerTarget(tenantId);
    expect(perTarget.every((r) => r.n === 1)).toBe(true);
    expect(perTarget).toHaveLength(4 + 1 + 3 + 2);
  }, 90_000);

  it('endpoint deliveries verify with the old and the new secret during a rotation overlap', async () => {
    const { tenantId, key } = await t.newTenantKey();
    const r = await receiver();
    const e = await endpoint(key, { url: r.url, eventTypes: ['upload.completed'] });
    const rotated = await call(key, 'POST', `/endpoints/${e.id}/secret/rotate`);
    await dispatcher();
    await finishUpload(t.pool, { tenantId });
    const [req] = await r.waitForRequests(1);
    expect(verified([req!], e.secret)[0]!.type).toBe('upload.completed');
    expect(verified([req!], rotated.body.secret)[0]!.type).toBe('upload.completed');
    expect(String(req!.headers['webhook-signature']).split(' ')).toHaveLength(2);
  });
});

describe('expansion is idempotent', () => {
  it('expanded twice, and by two callers at once → one delivery per event and target', async () => {
    const { tenantId, key } = await t.newTenantKey();
    const r = await receiver();
    await endpoint(key, { url: r.url });
    await endpoint(key, { url: r.url, eventTypes: ['upload.failed'] });
    for (let i = 0; i < 20; i++) {
      await finishUpload(t.pool, { tenantId, callbackUrl: r.url, outcome: i % 2 ? 'failed' : 'completed', expand: false });
    }
    const other = createPool(t.databaseUrl, 'stream-api:test-expand', 2);
    cleanups.push(() => other.end());
    const [a, b] = await Promise.all([expandAll(t.pool, 3), expandAll(other, 3)]);
    expect(a.events + b.events).toBe(20);
    expect(a.deliveries + b.deliveries).toBe(20 * 2 + 10); // callback + the all-types endpoint, + 10 failures
    expect(await expandAll(t.pool)).toEqual({ events: 0, deliveries: 0, superseded: 0 });
    // Even an event marked unexpanded again (as if its expansion's commit were unknown) adds nothing.
    await t.pool.query('UPDATE outbox_events SET expanded_at = NULL WHERE tenant_id = $1', [tenantId]);
    expect(await expandAll(t.pool)).toEqual({ events: 20, deliveries: 0, superseded: 0 });
    const perTarget = await deliveriesPerTarget(tenantId);
    expect(perTarget).toHaveLength(50);
    expect(perTarget.every((row) => row.n === 1)).toBe(true);
  });

  it('two dispatchers racing on the same events → each target receives each event once', async () => {
    const { tenantId, key } = await t.newTenantKey();
    const [r1, r2] = await Promise.all([receiver(), receiver()]);
    await endpoint(key, { url: r1.url });
    await endpoint(key, { url: r2.url, eventTypes: ['upload.completed'] });
    await Promise.all([dispatcher(), dispatcher()]);
    await Promise.all(Array.from({ length: 30 }, (_, i) => finishUpload(t.pool, { tenantId, outcome: i % 3 ? 'completed' : 'failed', expand: false })));
    await Promise.all([r1.waitForRequests(30), r2.waitForRequests(20)]);
    await settle();
    const ids = (rs: Receiver) => rs.requests.map((q) => String(q.headers['webhook-id']));
    expect(new Set(ids(r1)).size).toBe(30);
    expect(r1.requests).toHaveLength(30);
    expect(r2.requests).toHaveLength(20);
    expect((await deliveriesPerTarget(tenantId)).every((row) => row.n === 1)).toBe(true);
  });

  it('a dispatcher killed after expanding (mid-send) → the next one delivers: nothing lost, one delivery per target', async () => {
    const { tenantId, key } = await t.newTenantKey();
    const r = await receiver();
    r.handler = () => {}; // hold every request open: the child has expanded and is mid-send when killed
    const e = await endpoint(key, { url: r.url });
    const child = spawnService(t, 'dispatcher', WEBHOOK_ENV);
    cleanups.push(async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    const { uploadId } = await finishUpload(t.pool, { tenantId, callbackUrl: r.url, expand: false });
    await r.waitForRequests(2, 30_000);
    child.kill('SIGKILL');
    await once(child, 'exit');
    const { rows: events } = await t.pool.query('SELECT expanded_at FROM outbox_events WHERE upload_id = $1', [uploadId]);
    expect(events.every((ev) => ev.expanded_at instanceof Date)).toBe(true);

    // And an event whose expansion committed just before its dispatcher died, nothing sent yet.
    await finishUpload(t.pool, { tenantId, callbackUrl: r.url, expand: false });
    expect(await expandAll(t.pool)).toMatchObject({ events: 1, deliveries: 2 });

    r.handler = ok;
    await dispatcher();
    await waitFor(async () => {
      const { rows } = await t.pool.query(`SELECT count(*)::int AS n FROM deliveries WHERE tenant_id = $1 AND delivery_status = 'sent'`, [tenantId]);
      return rows[0].n === 4;
    }, 30_000, 'all four deliveries to be sent');
    const perTarget = await deliveriesPerTarget(tenantId);
    expect(perTarget).toHaveLength(4); // 2 events × (callback + endpoint)
    expect(perTarget.every((row) => row.n === 1)).toBe(true);
    // The killed attempts were re-sent under the same webhook-id; the second event was sent once per target.
    const { rows } = await t.pool.query<{ id: string; upload_id: string; endpoint_id: string | null }>(
      'SELECT id, upload_id, endpoint_id FROM deliveries WHERE tenant_id = $1',
      [tenantId],
    );
    const seen = r.requests.map((q) => String(q.headers['webhook-id']));
    for (const d of rows) expect(seen.filter((id) => id === d.id)).toHaveLength(d.upload_id === uploadId ? 2 : 1);
    const toEndpoint = new Set(rows.filter((d) => d.endpoint_id === e.id).map((d) => d.id));
    expect(verified(r.requests.filter((q) => toEndpoint.has(String(q.headers['webhook-id']))), e.secret)).toHaveLength(3);
  }, 60_000);
});

describe('who receives what', () => {
  it('an endpoint created after an event does not receive it; it receives the next one', async () => {
    const { tenantId, key } = await t.newTenantKey();
    const r = await receiver();
    const old = await finishUpload(t.pool, { tenantId, expand: false });
    await endpoint(key, { url: r.url });
    await dispatcher();
    const fresh = await finishUpload(t.pool, { tenantId });
    const [req] = await r.waitForRequests(1);
    await settle();
    expect(r.requests).toHaveLength(1);
    expect(JSON.parse(req!.body).uploadId).toBe(fresh.uploadId);
    const { rows } = await t.pool.query('SELECT expanded_at FROM outbox_events WHERE upload_id = $1', [old.uploadId]);
    expect(rows[0].expanded_at).toBeInstanceOf(Date); // expanded — to no one
  });

  it('a disabled endpoint gets nothing new; its pending deliveries wait and flow when it is enabled again', async () => {
    const { tenantId, key } = await t.newTenantKey();
    const r = await receiver();
    const e = await endpoint(key, { url: r.url });
    await finishUpload(t.pool, { tenantId }); // expanded: a pending delivery to the endpoint
    expect((await call(key, 'PATCH', `/endpoints/${e.id}`, { enabled: false })).body.enabled).toBe(false);
    await dispatcher();
    const whileDisabled = await finishUpload(t.pool, { tenantId });
    await settle();
    expect(r.requests).toEqual([]); // the pending one waits, the new one was never meant for it
    const { rows } = await t.pool.query('SELECT count(*)::int AS n FROM deliveries WHERE upload_id = $1', [whileDisabled.uploadId]);
    expect(rows[0].n).toBe(1); // only the callback target's (skipped: no callbackUrl)

    expect((await call(key, 'PATCH', `/endpoints/${e.id}`, { enabled: true })).body.enabled).toBe(true);
    await r.waitForRequests(1, 5000); // woken at once, not by the sweep
    await settle();
    expect(r.requests).toHaveLength(1);
  });

  it('deleting an endpoint skips its pending deliveries and keeps its history', async () => {
    const { tenantId, key } = await t.newTenantKey();
    const r = await receiver();
    const e = await endpoint(key, { url: r.url });
    const { uploadId } = await finishUpload(t.pool, { tenantId });
    expect((await call(key, 'DELETE', `/endpoints/${e.id}`)).status).toBe(204);
    await dispatcher();
    await settle();
    expect(r.requests).toEqual([]);
    const { rows } = await t.pool.query(
      `SELECT delivery_status, last_error, endpoint_id FROM deliveries WHERE upload_id = $1 AND target_key <> 'callback'`,
      [uploadId],
    );
    expect(rows).toEqual([{ delivery_status: 'skipped', last_error: 'endpoint deleted', endpoint_id: null }]);
  });
});
