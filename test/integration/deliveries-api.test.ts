// The notification API over real HTTP: deliveries with their attempts, the failed-deliveries pull
// list, redelivery, the tenant's signing secret and its rotation (HTTP and CLI).
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { startDispatcher, type DispatcherHandle } from '../../src/notify/dispatcher.ts';
import { claimDue, INTERRUPTED_MESSAGE } from '../../src/notify/outbox.repository.ts';
import { createTestEnv, startApi, type TestEnv } from '../helpers/env.ts';
import { request } from '../helpers/http.ts';
import { attemptsOf, finishUpload, insertPendingDeliveries, waitForDelivery } from '../helpers/outbox.ts';
import { ok, startReceiver, type Receiver } from '../helpers/receiver.ts';

let t: TestEnv;
let api: Awaited<ReturnType<typeof startApi>>;
let dispatcher: DispatcherHandle;
let receiver: Receiver;
let me: { tenantId: string; key: string };
let other: { tenantId: string; key: string };

const gone: Receiver['handler'] = (_req, res) => res.writeHead(410).end('gone');

beforeAll(async () => {
  t = await createTestEnv({ WEBHOOK_ALLOWED_CIDRS: '127.0.0.0/8', WEBHOOK_BACKOFF_BASE_MS: '20', WEBHOOK_TIMEOUT_MS: '1000' });
  api = await startApi(t);
  receiver = await startReceiver();
  dispatcher = await startDispatcher({ pool: t.pool, config: t.config, logger: t.logger, databaseUrl: t.databaseUrl });
  me = await t.newTenantKey();
  other = await t.newTenantKey();
});
afterEach(() => {
  receiver.handler = ok;
  receiver.requests = [];
});
afterAll(async () => {
  await dispatcher?.stop();
  await api?.close();
  await receiver?.close();
  await t?.close();
});

const get = (key: string, path: string) => request(api.url, key, 'GET', path);
const post = (key: string, path: string) => request(api.url, key, 'POST', path);

/** A delivery that failed at once (410), for tenant `who`. */
async function failedDelivery(who = me) {
  receiver.handler = gone;
  const created = await finishUpload(t.pool, { tenantId: who.tenantId, callbackUrl: receiver.url });
  await waitForDelivery(t.pool, created.deliveryId!);
  receiver.handler = ok;
  return created as { uploadId: string; deliveryId: string };
}

describe('reading deliveries', () => {
  it('GET /uploads/:id/deliveries → each delivery with its attempts; the status response has the summary', async () => {
    let calls = 0;
    receiver.handler = (_req, res) => (++calls === 1 ? res.writeHead(500).end('boom') : res.end('thanks'));
    const { uploadId, deliveryId } = await finishUpload(t.pool, { tenantId: me.tenantId, callbackUrl: receiver.url });
    await waitForDelivery(t.pool, deliveryId!);

    const res = await get(me.key, `/uploads/${uploadId}/deliveries`);
    expect(res.status).toBe(200);
    expect(res.body.uploadId).toBe(uploadId);
    expect(res.body.items).toHaveLength(1);
    const [item] = res.body.items;
    expect(item).toMatchObject({
      deliveryId, uploadId, uploadAttempt: 1, event: 'upload.completed', channel: 'webhook', target: receiver.url,
      status: 'sent', attempts: 2, nextAttemptAt: null, lastError: null,
      payload: { type: 'upload.completed', uploadId, status: 'completed' },
    });
    expect(item.history).toEqual([
      expect.objectContaining({ attempt: 1, trigger: 'scheduled', responseStatus: 500, responseExcerpt: 'boom', errorCode: 'http_5xx', nextAttemptAt: expect.any(String) }),
      expect.objectContaining({ attempt: 2, trigger: 'scheduled', responseStatus: 200, responseExcerpt: 'thanks', errorCode: null, nextAttemptAt: null }),
    ]);
    expect(typeof item.history[0].durationMs).toBe('number');

    const status = await get(me.key, `/uploads/${uploadId}`);
    expect(status.body.delivery).toEqual({ status: 'sent', attempts: 2, lastError: null });

    const single = await get(me.key, `/deliveries/${deliveryId}`);
    expect(single.status).toBe(200);
    expect(single.body.history).toHaveLength(2);
  });

  it('an attempt whose dispatcher died shows as started (no outcome), then as interrupted beside the attempt that followed', async () => {
    // A dispatcher that dies right after its claim started the attempt, played with the real claim.
    // One transaction, so the running dispatcher only ever sees the row already leased.
    const client = await t.pool.connect();
    let deliveryId: string;
    try {
      await client.query('BEGIN');
      [deliveryId] = (await insertPendingDeliveries(client as unknown as pg.Pool, me.tenantId, receiver.url, 1)) as [string];
      const [dead] = await claimDue(client, 1, 2000, 3, new Date());
      expect(dead).toMatchObject({ id: deliveryId, attempt: 1 });
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    const uploadId = (await t.pool.query('SELECT upload_id FROM deliveries WHERE id = $1', [deliveryId])).rows[0].upload_id;

    const during = await get(me.key, `/uploads/${uploadId}/deliveries`);
    expect(during.body.items[0]).toMatchObject({ deliveryId, status: 'pending', attempts: 1 });
    expect(during.body.items[0].history).toEqual([
      {
        attempt: 1, trigger: 'scheduled', state: 'started', startedAt: expect.any(String), finishedAt: null, durationMs: null,
        responseStatus: null, responseExcerpt: null, errorCode: null, errorMessage: null, nextAttemptAt: null,
      },
    ]);

    expect(await waitForDelivery(t.pool, deliveryId)).toMatchObject({ delivery_status: 'sent', attempts: 2 });
    const after = await get(me.key, `/deliveries/${deliveryId}`);
    expect(after.body).toMatchObject({ status: 'sent', attempts: 2 });
    expect(after.body.history).toEqual([
      expect.objectContaining({
        attempt: 1, state: 'interrupted', finishedAt: expect.any(String), durationMs: null, responseStatus: null,
        errorCode: 'interrupted', errorMessage: INTERRUPTED_MESSAGE, nextAttemptAt: expect.any(String),
      }),
      expect.objectContaining({ attempt: 2, state: 'succeeded', finishedAt: expect.any(String), durationMs: expect.any(Number), responseStatus: 200 }),
    ]);
    expect(receiver.requests.map((r) => r.headers['webhook-id'])).toEqual([deliveryId]); // the dead one never sent: played here
  });

  it("another tenant's upload or delivery, and malformed ids, are 404", async () => {
    const { uploadId, deliveryId } = await failedDelivery();
    expect((await get(other.key, `/uploads/${uploadId}/deliveries`)).status).toBe(404);
    expect((await get(other.key, `/deliveries/${deliveryId}`)).status).toBe(404);
    expect((await post(other.key, `/deliveries/${deliveryId}/redeliver`)).status).toBe(404);
    expect((await get(me.key, '/deliveries/not-a-uuid')).status).toBe(404);
    expect((await post(me.key, '/deliveries/not-a-uuid/redeliver')).status).toBe(404);
    expect((await get(me.key, '/uploads/not-a-uuid/deliveries')).status).toBe(404);
    expect((await get('sapi_wrong', '/deliveries')).status).toBe(401);
  });

  it('GET /deliveries?status=failed is tenant-scoped and keyset-paginated', async () => {
    const { tenantId, key } = await t.newTenantKey();
    const mine = [];
    for (let i = 0; i < 5; i++) mine.push((await failedDelivery({ tenantId, key })).deliveryId);
    await failedDelivery(other); // another tenant's failure never shows up
    const sent = await finishUpload(t.pool, { tenantId, callbackUrl: receiver.url });
    await waitForDelivery(t.pool, sent.deliveryId!);

    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res = await get(key, `/deliveries?status=failed&limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(res.status).toBe(200);
      expect(res.body.items.every((d: { status: string }) => d.status === 'failed')).toBe(true);
      expect(res.body.items[0]).not.toHaveProperty('history');
      seen.push(...res.body.items.map((d: { deliveryId: string }) => d.deliveryId));
      cursor = res.body.nextCursor;
      pages += 1;
    } while (cursor);
    expect(pages).toBe(3);
    expect(seen).toEqual([...mine].reverse()); // newest first, each once

    const all = await get(key, '/deliveries?limit=100');
    expect(all.body.items).toHaveLength(6);
    expect(all.body.nextCursor).toBeNull();
    expect((await get(key, '/deliveries?status=lost')).status).toBe(400);
    expect((await get(key, '/deliveries?limit=0')).status).toBe(400);
    expect((await get(key, '/deliveries?cursor=bogus')).status).toBe(400);
  });
});

describe('redelivery', () => {
  it('a failed delivery → pending now, sent by a manual attempt, history kept', async () => {
    const { uploadId, deliveryId } = await failedDelivery();
    expect((await get(me.key, `/uploads/${uploadId}`)).body.delivery).toEqual({ status: 'failed', attempts: 1, lastError: 'http_4xx: HTTP 410' });

    const res = await post(me.key, `/deliveries/${deliveryId}/redeliver`);
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ deliveryId, status: 'pending', attempts: 1 });
    expect(await waitForDelivery(t.pool, deliveryId)).toMatchObject({ delivery_status: 'sent', attempts: 2, last_error: null });
    expect((await attemptsOf(t.pool, deliveryId)).map((a) => [a.attempt, a.trigger, a.response_status])).toEqual([
      [1, 'scheduled', 410],
      [2, 'manual', 200],
    ]);
    expect(receiver.requests.map((r) => r.headers['webhook-id'])).toEqual([deliveryId, deliveryId]); // 410, then the manual one
  });

  it('a redelivery gets a full retry schedule of its own (1 manual + 3 scheduled attempts)', async () => {
    const { deliveryId } = await failedDelivery();
    receiver.handler = (_req, res) => res.writeHead(503).end();
    expect((await post(me.key, `/deliveries/${deliveryId}/redeliver`)).status).toBe(202);
    expect(await waitForDelivery(t.pool, deliveryId, ['failed'])).toMatchObject({ delivery_status: 'failed', attempts: 5 });
    expect((await attemptsOf(t.pool, deliveryId)).map((a) => a.trigger)).toEqual(['scheduled', 'manual', 'scheduled', 'scheduled', 'scheduled']);
  });

  it('409 for a skipped delivery (no target) and for one being sent right now', async () => {
    const skipped = await finishUpload(t.pool, { tenantId: me.tenantId, callbackUrl: null });
    const res = await post(me.key, `/deliveries/${skipped.deliveryId}/redeliver`);
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe('invalid_state');

    const { deliveryId } = await failedDelivery();
    await t.pool.query(
      `UPDATE deliveries SET delivery_status = 'pending', next_attempt_at = now() + interval '1 hour',
              locked_until = now() + interval '1 minute' WHERE id = $1`,
      [deliveryId],
    );
    expect((await post(me.key, `/deliveries/${deliveryId}/redeliver`)).status).toBe(409);
    await t.pool.query(`UPDATE deliveries SET delivery_status = 'failed', locked_until = NULL WHERE id = $1`, [deliveryId]);
  });
});

describe('the signing secret', () => {
  const secretOf = async (tenantId: string) =>
    (await t.pool.query('SELECT webhook_secret, previous_webhook_secret, previous_secret_expires_at FROM tenants WHERE id = $1', [tenantId])).rows[0];

  it('GET /tenant → { name, webhookSecret }; POST /tenant/rotate-secret keeps the old one for 24 h', async () => {
    const { tenantId, key } = await t.newTenantKey('rotating-http');
    const before = await secretOf(tenantId);
    const res = await get(key, '/tenant');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ name: 'rotating-http', webhookSecret: before.webhook_secret });
    expect(res.body.webhookSecret).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);

    const rotated = await post(key, '/tenant/rotate-secret');
    expect(rotated.status).toBe(200);
    expect(rotated.body.webhookSecret).not.toBe(before.webhook_secret);
    const hours = (Date.parse(rotated.body.previousSecretExpiresAt) - Date.now()) / 3_600_000;
    expect(hours).toBeGreaterThan(23.9);
    expect(hours).toBeLessThanOrEqual(24);
    const after = await secretOf(tenantId);
    expect(after).toMatchObject({ webhook_secret: rotated.body.webhookSecret, previous_webhook_secret: before.webhook_secret });
    expect((await get(key, '/tenant')).body.webhookSecret).toBe(rotated.body.webhookSecret);
  });

  it('CLI: tenants secret prints only the secret; tenants rotate-secret rotates; unknown tenant exits 1', async () => {
    const { tenantId } = await t.newTenantKey('rotating-cli');
    const before = await secretOf(tenantId);
    const shown = await cli(['tenants', 'secret', '--tenant', 'rotating-cli']);
    expect(shown).toMatchObject({ code: 0, stdout: `${before.webhook_secret}\n` });

    const rotated = await cli(['tenants', 'rotate-secret', '--tenant', 'rotating-cli']);
    expect(rotated.code).toBe(0);
    const after = await secretOf(tenantId);
    expect(rotated.stdout).toBe(`${after.webhook_secret}\n`);
    expect(after.previous_webhook_secret).toBe(before.webhook_secret);

    const missing = await cli(['tenants', 'secret', '--tenant', 'nobody-here']);
    expect(missing).toMatchObject({ code: 1, stdout: '' });
    expect(missing.stderr).toContain('not found');
    expect((await cli(['tenants', 'secret'])).code).toBe(2);
  });
});

const BIN = fileURLToPath(new URL('../../bin/stream-api.mjs', import.meta.url));

async function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...t.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const [code] = await once(child, 'exit');
  return { code, stdout, stderr };
}
