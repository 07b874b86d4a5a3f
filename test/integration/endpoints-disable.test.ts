// Auto-disable and superseding against real receivers, dispatchers and Postgres. An endpoint failing
// for ENDPOINT_DISABLE_AFTER_HOURS (an injected dispatcher clock moves time on) is disabled, keeps its
// pending deliveries, and endpoint.disabled reaches another endpoint and the tenant's live feed;
// re-enabling resumes. A retried upload's newer outcome supersedes the older pending notice, whether
// it was waiting or in flight: the receiver never gets `failed` after `completed`.
import { randomUUID } from 'node:crypto';
import { FormatRegistry } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { Webhook } from 'standardwebhooks';
import { afterEach, describe, expect, it } from 'vitest';
import { completeUpload, failUpload, type ClaimedUpload } from '../../src/ingest/upload-state.ts';
import { EndpointDisabledPayload } from '../../src/notify/event-types.ts';
import { expandAll } from '../../src/notify/expand.ts';
import { createEndpoint, deliveriesOf, runDispatcher } from '../helpers/endpoints.ts';
import { useApi } from '../helpers/env.ts';
import { request, sendJson } from '../helpers/http.ts';
import { openSse } from '../helpers/live.ts';
import { finishUpload } from '../helpers/outbox.ts';
import { startReceiver, type Receiver } from '../helpers/receiver.ts';
import { waitFor } from '../helpers/wait.ts';

FormatRegistry.Set('uuid', (v) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(v));
FormatRegistry.Set('date-time', (v) => !Number.isNaN(Date.parse(v)));

const ctx = useApi({
  WEBHOOK_ALLOWED_CIDRS: '127.0.0.0/8',
  WEBHOOK_BACKOFF_BASE_MS: '50',
  WEBHOOK_BACKOFF_MAX_MS: '100',
  WEBHOOK_TIMEOUT_MS: '3000',
  ENDPOINT_BREAKER_THRESHOLD: '2',
  ENDPOINT_PROBE_BASE_MS: '100',
  ENDPOINT_PROBE_MAX_MS: '200',
  ENDPOINT_DISABLE_AFTER_HOURS: '1',
});
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function receiver(status = 200): Promise<Receiver> {
  const r = await startReceiver();
  r.handler = (_req, res) => {
    res.statusCode = status;
    res.end();
  };
  cleanups.push(() => r.close());
  return r;
}

const health = async (key: string, id: string) => (await request(ctx.api.url, key, 'GET', `/endpoints/${id}`)).body.health;

describe('auto-disable', () => {
  it('after failing for the period: disabled, pending deliveries kept, endpoint.disabled to another endpoint and the live feed; re-enabling resumes', async () => {
    const { tenantId, key } = await ctx.t.newTenantKey();
    const failing = await receiver(500);
    const watcher = await receiver(200);
    const eFailing = await createEndpoint(ctx.api, key, { url: failing.url, eventTypes: ['upload.completed'] });
    const eWatcher = await createEndpoint(ctx.api, key, { url: watcher.url, eventTypes: ['endpoint.disabled'] });
    const feed = await openSse(ctx.api.url, '/events', { key });
    cleanups.push(async () => feed.close());
    let offsetMs = 0;
    cleanups.push(await runDispatcher(ctx.t, { now: () => Date.now() + offsetMs }));
    for (let i = 0; i < 3; i += 1) await finishUpload(ctx.t.pool, { tenantId, callbackUrl: null });

    await waitFor(async () => (await health(key, eFailing.id)).state === 'open', 15_000, 'the breaker to open');
    expect(await health(key, eFailing.id)).toMatchObject({ state: 'open' }); // failing, but not for an hour yet
    offsetMs = 61 * 60_000; // the next probe fails an hour and a minute after the first failure
    await waitFor(async () => (await health(key, eFailing.id)).state === 'disabled', 15_000, 'the endpoint to be disabled');

    const [notice] = await watcher.waitForRequests(1);
    // Signed at the dispatcher's (moved) clock, so checked with the reference signer rather than verify's tolerance.
    const h = notice!.headers as Record<string, string>;
    const signedAt = new Date(Number(h['webhook-timestamp']) * 1000);
    expect(h['webhook-signature']!.split(' ')).toContain(new Webhook(eWatcher.secret).sign(h['webhook-id']!, signedAt, notice!.body));
    const payload = JSON.parse(notice!.body) as Record<string, unknown>;
    expect(Value.Check(EndpointDisabledPayload, payload)).toBe(true);
    expect(payload).toMatchObject({ type: 'endpoint.disabled', endpointId: eFailing.id, url: failing.url });
    const live = await feed.waitFor((ev) => ev.event === 'endpoint.disabled', 10_000);
    expect(live.data).toEqual(payload);

    const shown = await request(ctx.api.url, key, 'GET', `/endpoints/${eFailing.id}`);
    expect(shown.body).toMatchObject({ enabled: false, health: { state: 'disabled', disabledReason: 'every attempt failed for 1 h' } });
    // Kept, not dropped: all three still pending, and nothing goes out while disabled.
    const sentBefore = failing.requests.length;
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect((await deliveriesOf(ctx.t.pool, eFailing.id)).map((d) => d.delivery_status)).toEqual(['pending', 'pending', 'pending']);
    expect(failing.requests.length).toBe(sentBefore);
    // The failing endpoint is disabled, so it is no target of its own notice; only the watcher got one.
    expect(await deliveriesOf(ctx.t.pool, eWatcher.id)).toHaveLength(1);

    failing.handler = (_req, res) => res.end('ok');
    const enabled = await sendJson(ctx.api.url, key, 'PATCH', `/endpoints/${eFailing.id}`, { enabled: true });
    expect(enabled.status).toBe(200);
    expect(enabled.body.health).toMatchObject({ state: 'closed', consecutiveFailures: 0, failingSince: null, disabledReason: null });
    await waitFor(async () => (await deliveriesOf(ctx.t.pool, eFailing.id)).every((d) => d.delivery_status === 'sent'), 15_000, 'the kept deliveries to be sent');
  }, 90_000);
});

describe('superseding', () => {
  /** An upload whose attempt 1 failed and whose retry (attempt 2) completed: the worker's own final transactions. */
  async function failThenComplete(tenantId: string, between: () => Promise<void>): Promise<string> {
    const id = randomUUID();
    await ctx.t.pool.query(
      `INSERT INTO uploads (id, tenant_id, dataset, filename, size_bytes, sha256, object_key, status, attempt, started_at)
       VALUES ($1, $2, 'webhook_events', 'a.csv', 100, repeat('0', 64), $3, 'processing', 1, now())`,
      [id, tenantId, `uploads/${id}.csv`],
    );
    const claimed: ClaimedUpload = { id, tenant_id: tenantId, dataset: 'webhook_events', object_key: `uploads/${id}.csv`, size_bytes: 100, max_errors: null, max_error_ratio: null, attempt: 1 };
    const counts = { rowsProcessed: 0, rowsFailed: 9, bytesProcessed: 100, uncompressedBytesProcessed: 100, compression: 'none' as const };
    await failUpload(ctx.t.pool, claimed, { code: 'too_many_errors', message: 'too many' }, counts);
    await between();
    await ctx.t.pool.query(`UPDATE uploads SET status = 'processing', attempt = 2 WHERE id = $1`, [id]);
    await completeUpload(ctx.t.pool, { ...claimed, attempt: 2 }, { ...counts, rowsProcessed: 9, rowsFailed: 0, unknownColumns: [], csvHeader: 'a' });
    return id;
  }

  const typesReceived = (r: Receiver) => r.requests.map((q) => (JSON.parse(q.body) as { type: string }).type);

  it('a waiting older notice is skipped with the reason when the newer outcome is queued; only completed is sent', async () => {
    const { tenantId, key } = await ctx.t.newTenantKey();
    const r = await receiver(200);
    const e = await createEndpoint(ctx.api, key, { url: r.url, eventTypes: ['upload.completed', 'upload.failed'] });
    await failThenComplete(tenantId, async () => void (await expandAll(ctx.t.pool))); // failed: queued, not yet sent
    expect((await expandAll(ctx.t.pool)).superseded).toBe(1);
    const [older, newer] = await deliveriesOf(ctx.t.pool, e.id);
    expect(older).toMatchObject({ event: 'upload.failed', delivery_status: 'skipped' });
    expect(older!.last_error).toBe('superseded: a newer upload.completed (processing attempt 2) of this upload was queued for this target');
    cleanups.push(await runDispatcher(ctx.t));
    await waitFor(async () => (await deliveriesOf(ctx.t.pool, e.id))[1]?.delivery_status === 'sent', 10_000, 'completed to be sent');
    expect(newer!.event).toBe('upload.completed');
    expect(typesReceived(r)).toEqual(['upload.completed']);
  }, 60_000);

  it('an older notice in flight is not retried after the newer outcome is queued; the newer waits for it', async () => {
    const { tenantId, key } = await ctx.t.newTenantKey();
    const r = await receiver(200);
    let answered = 0;
    r.handler = (_req, res, received) => {
      const slowFailure = (JSON.parse(received.body) as { type: string }).type === 'upload.failed';
      setTimeout(() => {
        answered += 1;
        res.statusCode = slowFailure ? 503 : 200;
        res.end();
      }, slowFailure ? 700 : 0);
    };
    const e = await createEndpoint(ctx.api, key, { url: r.url, eventTypes: ['upload.completed', 'upload.failed'] });
    cleanups.push(await runDispatcher(ctx.t));
    await failThenComplete(tenantId, () => r.waitForRequests(1).then(() => {})); // the retry completes while failed is in flight
    await waitFor(async () => (await deliveriesOf(ctx.t.pool, e.id)).map((d) => d.delivery_status).join() === 'skipped,sent', 15_000, 'failed skipped, completed sent');
    const [older] = await deliveriesOf(ctx.t.pool, e.id);
    expect(older!.last_error).toMatch(/^superseded: a newer upload.completed/);
    expect(typesReceived(r)).toEqual(['upload.failed', 'upload.completed']);
    expect(answered).toBe(2); // completed went out only after failed had been answered
  }, 60_000);
});
