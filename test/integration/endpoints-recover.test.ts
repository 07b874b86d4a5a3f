// Recovery of an endpoint (POST /endpoints/:id/recover, GET /operations/:id) against a real receiver,
// a real dispatcher, the real worker running the background job, and Postgres: exactly the failed
// deliveries of the window are sent again (same webhook-id), a newer endpoint gets the events it
// missed (its filter applies), a second run queues nothing, and another tenant sees nothing.
import { Webhook } from 'standardwebhooks';
import { afterEach, describe, expect, it } from 'vitest';
import type { WorkerHandle } from '../../src/ingest/worker.ts';
import { runRecovery } from '../../src/notify/recover.ts';
import { createEndpoint, deliveriesOf, runDispatcher } from '../helpers/endpoints.ts';
import { useApi } from '../helpers/env.ts';
import { request, sendJson } from '../helpers/http.ts';
import { finishUpload } from '../helpers/outbox.ts';
import { startReceiver, type Receiver } from '../helpers/receiver.ts';
import { waitFor } from '../helpers/wait.ts';
import { startTestWorker } from '../helpers/worker.ts';

const ctx = useApi({
  WEBHOOK_ALLOWED_CIDRS: '127.0.0.0/8',
  WEBHOOK_MAX_RETRIES: '0', // one attempt, then failed: the outage is over quickly
  WEBHOOK_TIMEOUT_MS: '3000',
  ENDPOINT_BREAKER_THRESHOLD: '1000',
  RETENTION_DAYS: '7',
});
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function receiver(): Promise<Receiver> {
  const r = await startReceiver();
  cleanups.push(() => r.close());
  return r;
}

async function worker(): Promise<void> {
  const handle: WorkerHandle = await startTestWorker(ctx.t);
  cleanups.push(() => handle.stop());
}

/** When the upload's event happened, by the database clock (the window is judged by it). */
async function eventTime(uploadId: string): Promise<Date> {
  const { rows } = await ctx.t.pool.query<{ created_at: Date }>(`SELECT created_at FROM outbox_events WHERE upload_id = $1`, [uploadId]);
  return rows[0]!.created_at;
}

const uploadOf = (body: string) => (JSON.parse(body) as { uploadId: string }).uploadId;

async function recover(key: string, endpointId: string, body: Record<string, unknown>) {
  return sendJson(ctx.api.url, key, 'POST', `/endpoints/${endpointId}/recover`, body);
}

async function waitDone(key: string, location: string): Promise<Record<string, unknown>> {
  let last: Record<string, unknown> = {};
  await waitFor(async () => {
    last = (await request(ctx.api.url, key, 'GET', location)).body as Record<string, unknown>;
    return last.done === true;
  }, 20_000, `operation ${location} to be done`);
  return last;
}

describe('POST /endpoints/:id/recover', () => {
  it('re-sends exactly the failed deliveries of the window, with their webhook-id, and reports done with the count', async () => {
    const { tenantId, key } = await ctx.t.newTenantKey();
    const r = await receiver();
    let status = 500; // set before each upload, which settles before the next
    r.handler = (_req, res) => {
      res.statusCode = status;
      res.end();
    };
    const endpoint = await createEndpoint(ctx.api, key, { url: r.url, eventTypes: ['upload.completed'] });
    cleanups.push(await runDispatcher(ctx.t));

    // before the window: fails; in it: one fails, one is sent; at its end (until is exclusive): fails
    const uploads: string[] = [];
    for (const fails of [true, true, false, true]) {
      status = fails ? 500 : 200;
      const { uploadId } = await finishUpload(ctx.t.pool, { tenantId, callbackUrl: null });
      uploads.push(uploadId);
      await waitFor(async () => (await deliveriesOf(ctx.t.pool, endpoint.id)).every((d) => d.delivery_status !== 'pending'), 15_000, 'the delivery to settle');
    }
    const [before, failedIn, sentIn, atEnd] = uploads as [string, string, string, string];
    const settled = await deliveriesOf(ctx.t.pool, endpoint.id);
    expect(settled.map((d) => [d.upload_id, d.delivery_status])).toEqual([
      [before, 'failed'], [failedIn, 'failed'], [sentIn, 'sent'], [atEnd, 'failed'],
    ]);
    const failedDelivery = settled[1]!;

    // The receiver is back, at a new address: the recovered delivery goes where the endpoint points now.
    const moved = await receiver();
    const patched = await sendJson(ctx.api.url, key, 'PATCH', `/endpoints/${endpoint.id}`, { url: moved.url });
    expect(patched.status).toBe(200);
    const seen = r.requests.length;
    const since = await eventTime(failedIn);
    const until = await eventTime(atEnd);
    await worker();
    const accepted = await recover(key, endpoint.id, { since: since.toISOString(), until: until.toISOString() });
    expect(accepted.status).toBe(202);
    const body = accepted.body as { id: string; name: string; done: boolean; metadata: Record<string, unknown> };
    expect(accepted.headers.location).toBe(`/operations/${body.id}`);
    expect(body).toMatchObject({
      name: `operations/${body.id}`,
      metadata: { kind: 'endpoint.recover', endpointId: endpoint.id, since: since.toISOString(), until: until.toISOString() },
    });

    const done = await waitDone(key, accepted.headers.location as string);
    expect(done).toMatchObject({ done: true, result: { queued: 1 }, metadata: { queued: 1 } });
    expect(done).not.toHaveProperty('error');
    const again = await moved.waitForRequests(1);
    expect(again.map((q) => uploadOf(q.body))).toEqual([failedIn]);
    expect(again[0]!.headers['webhook-id']).toBe(failedDelivery.id);
    expect(() => new Webhook(endpoint.secret).verify(again[0]!.body, again[0]!.headers as Record<string, string>)).not.toThrow();
    await waitFor(async () => (await deliveriesOf(ctx.t.pool, endpoint.id))[1]!.delivery_status === 'sent', 15_000, 'the recovered delivery to be sent');

    const after = await deliveriesOf(ctx.t.pool, endpoint.id);
    expect(after.map((d) => [d.upload_id, d.delivery_status, d.attempts])).toEqual([
      [before, 'failed', 1], [failedIn, 'sent', 2], [sentIn, 'sent', 1], [atEnd, 'failed', 1],
    ]);
    const { rows: attempts } = await ctx.t.pool.query(`SELECT attempt, trigger FROM delivery_attempts WHERE delivery_id = $1 ORDER BY attempt`, [failedDelivery.id]);
    expect(attempts).toEqual([{ attempt: 1, trigger: 'scheduled' }, { attempt: 2, trigger: 'manual' }]);

    // The job run again (a retried job) changes nothing; a second recovery of the window queues nothing.
    expect(await runRecovery(ctx.t.pool, body.id)).toMatchObject({ done: true, queued: 1 });
    const second = await recover(key, endpoint.id, { since: since.toISOString(), until: until.toISOString() });
    expect(await waitDone(key, second.headers.location as string)).toMatchObject({ done: true, result: { queued: 0 } });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(moved.requests).toHaveLength(1);
    expect(r.requests).toHaveLength(seen);
    expect((await deliveriesOf(ctx.t.pool, endpoint.id)).map((d) => d.attempts)).toEqual([1, 2, 1, 1]);
  });

  it("creates the deliveries a newer endpoint missed (its filter applies), idempotently; until defaults to now", async () => {
    const { tenantId, key } = await ctx.t.newTenantKey();
    const since = new Date(Date.now() - 60_000).toISOString();
    const completed = [
      (await finishUpload(ctx.t.pool, { tenantId, callbackUrl: null })).uploadId,
      (await finishUpload(ctx.t.pool, { tenantId, callbackUrl: null })).uploadId,
    ];
    await finishUpload(ctx.t.pool, { tenantId, callbackUrl: null, outcome: 'failed' });
    const r = await receiver();
    const endpoint = await createEndpoint(ctx.api, key, { url: r.url, eventTypes: ['upload.completed'] });
    cleanups.push(await runDispatcher(ctx.t));
    await worker();
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await deliveriesOf(ctx.t.pool, endpoint.id)).toEqual([]); // a new endpoint gets no old event by itself
    expect(r.requests).toHaveLength(0);

    const accepted = await recover(key, endpoint.id, { since });
    expect(accepted.status).toBe(202);
    const until = Date.parse((accepted.body as { metadata: { until: string } }).metadata.until);
    expect(Math.abs(until - Date.now())).toBeLessThan(10_000);
    expect(await waitDone(key, accepted.headers.location as string)).toMatchObject({ done: true, result: { queued: 2 } });
    const got = await r.waitForRequests(2);
    expect(got.map((q) => uploadOf(q.body)).sort()).toEqual([...completed].sort());
    for (const q of got) {
      expect(() => new Webhook(endpoint.secret).verify(q.body, q.headers as Record<string, string>)).not.toThrow();
      expect(JSON.parse(q.body)).toMatchObject({ status: 'completed' });
    }

    const second = await recover(key, endpoint.id, { since });
    expect(await waitDone(key, second.headers.location as string)).toMatchObject({ done: true, result: { queued: 0 } });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(r.requests).toHaveLength(2);
    expect(await deliveriesOf(ctx.t.pool, endpoint.id)).toHaveLength(2);
  });

  it("another tenant's endpoint and operation are 404, as are unknown and malformed ids", async () => {
    const a = await ctx.t.newTenantKey();
    const b = await ctx.t.newTenantKey();
    const endpoint = await createEndpoint(ctx.api, a.key, { url: 'http://127.0.0.1:9/hook' });
    const since = new Date(Date.now() - 60_000).toISOString();
    const accepted = await recover(a.key, endpoint.id, { since });
    expect(accepted.status).toBe(202);
    const location = accepted.headers.location as string;

    const theirs = await recover(b.key, endpoint.id, { since });
    expect(theirs.status).toBe(404);
    expect(theirs.body).toEqual({ error: { code: 'not_found', message: 'endpoint not found' } });
    expect((await request(ctx.api.url, b.key, 'GET', location)).status).toBe(404);
    expect((await request(ctx.api.url, a.key, 'GET', location)).status).toBe(200);
    expect((await recover(a.key, '00000000-0000-4000-8000-000000000000', { since })).status).toBe(404);
    expect((await recover(a.key, 'nope', { since })).status).toBe(404);
    expect((await request(ctx.api.url, a.key, 'GET', '/operations/00000000-0000-4000-8000-000000000000')).status).toBe(404);
    expect((await request(ctx.api.url, a.key, 'GET', '/operations/nope')).status).toBe(404);
    const { rows } = await ctx.t.pool.query(`SELECT count(*)::int AS n FROM operations WHERE endpoint_id = $1`, [endpoint.id]);
    expect(rows[0].n).toBe(1); // the refused requests wrote nothing
  });

  it('refuses a bad window with 400 validation_failed', async () => {
    const { key } = await ctx.t.newTenantKey();
    const endpoint = await createEndpoint(ctx.api, key, { url: 'http://127.0.0.1:9/hook' });
    const hourAgo = new Date(Date.now() - 3_600_000).toISOString();
    const cases: [Record<string, unknown>, RegExp][] = [
      [{}, /since/],
      [{ since: 'yesterday' }, /since must be an RFC 3339 timestamp/],
      [{ since: '2026-01-31' }, /since must be an RFC 3339 timestamp/],
      [{ since: '2026-01-31T12:00:00' }, /since must be an RFC 3339 timestamp/], // no offset
      [{ since: hourAgo, until: 'soon' }, /until must be an RFC 3339 timestamp/],
      [{ since: hourAgo, until: hourAgo }, /since must be before until/],
      [{ since: new Date(Date.now() + 60_000).toISOString() }, /since must be before until/],
      [{ since: new Date(Date.now() - 8 * 86_400_000).toISOString() }, /retention period \(RETENTION_DAYS = 7\)/],
      [{ since: 12 }, /./],
    ];
    for (const [body, message] of cases) {
      const res = await recover(key, endpoint.id, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      const error = (res.body as { error: { code: string; message: string } }).error;
      expect(error.code, JSON.stringify(body)).toBe('validation_failed');
      expect(error.message, JSON.stringify(body)).toMatch(message);
    }
    const { rows } = await ctx.t.pool.query(`SELECT count(*)::int AS n FROM operations WHERE endpoint_id = $1`, [endpoint.id]);
    expect(rows[0].n).toBe(0);
  });
});
