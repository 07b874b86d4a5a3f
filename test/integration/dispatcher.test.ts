// The dispatcher against real receivers on loopback and the real outbox: every outcome of an
// attempt, its audit row, the retry schedule, signing and rotation, the SSRF guard, graceful stop.
import { Webhook } from 'standardwebhooks';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config.ts';
import { startDispatcher, USER_AGENT, type DispatcherHandle, type DispatcherOptions } from '../../src/notify/dispatcher.ts';
import { rotateWebhookSecret } from '../../src/notify/secrets.repository.ts';
import { createTestEnv, type TestEnv } from '../helpers/env.ts';
import { attemptsOf, deliveryState, finishUpload, insertPendingDeliveries, waitForDelivery } from '../helpers/outbox.ts';
import { ok, startReceiver, type Receiver } from '../helpers/receiver.ts';

let t: TestEnv;
let receiver: Receiver;
let tenantId: string;
const running: DispatcherHandle[] = [];

beforeAll(async () => {
  t = await createTestEnv({
    WEBHOOK_ALLOWED_CIDRS: '127.0.0.0/8,::1/128',
    WEBHOOK_BACKOFF_BASE_MS: '50',
    WEBHOOK_BACKOFF_MAX_MS: '2000',
    WEBHOOK_TIMEOUT_MS: '1000',
  });
  receiver = await startReceiver();
  ({ tenantId } = await t.newTenantKey());
});
afterEach(async () => {
  await Promise.all(running.splice(0).map((d) => d.stop()));
  receiver.handler = ok;
  receiver.requests = [];
  receiver.connections = 0;
});
afterAll(async () => {
  await receiver?.close();
  await t?.close();
});

async function dispatcher(webhook: Partial<Config['webhook']> = {}, opts: DispatcherOptions = {}) {
  const config = { ...t.config, webhook: { ...t.config.webhook, ...webhook } };
  const handle = await startDispatcher({ pool: t.pool, config, logger: t.logger, databaseUrl: t.databaseUrl }, opts);
  running.push(handle);
  return handle;
}

async function secretOf(id: string): Promise<string> {
  return (await t.pool.query('SELECT webhook_secret FROM tenants WHERE id = $1', [id])).rows[0].webhook_secret;
}

const status = (code: number, headers: Record<string, string> = {}) =>
  ((_req, res) => res.writeHead(code, headers).end(`status ${code}`)) satisfies Receiver['handler'];

describe('dispatcher: outcomes', () => {
  it('delivers once, signed (standardwebhooks verifies), exact payload; row sent with one attempt', async () => {
    await dispatcher();
    const committedAt = Date.now();
    const { uploadId, deliveryId } = await finishUpload(t.pool, { tenantId, callbackUrl: receiver.url });
    const [req] = await receiver.waitForRequests(1);
    expect(req!.at - committedAt).toBeLessThan(1000); // woken by NOTIFY, not by the sweep
    const state = await waitForDelivery(t.pool, deliveryId!);

    const verified = new Webhook(await secretOf(tenantId)).verify(req!.body, req!.headers as Record<string, string>);
    expect(verified).toEqual(JSON.parse(req!.body));
    expect(JSON.parse(req!.body)).toEqual({
      type: 'upload.completed',
      uploadId,
      status: 'completed',
      rowsProcessed: 10,
      rowsFailed: 2,
      timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
    });
    expect(req!.headers['webhook-id']).toBe(deliveryId);
    expect(req!.headers['user-agent']).toBe(USER_AGENT);
    expect(USER_AGENT).toMatch(/^stream-api\/\d+\.\d+\.\d+/);
    expect(req!.headers['content-type']).toBe('application/json');
    expect(Math.abs(Number(req!.headers['webhook-timestamp']) - Date.now() / 1000)).toBeLessThan(5);

    expect(state).toMatchObject({ delivery_status: 'sent', attempts: 1, last_error: null });
    expect(state.delivered_at).toBeInstanceOf(Date);
    const attempts = await attemptsOf(t.pool, deliveryId!);
    expect(attempts).toEqual([
      expect.objectContaining({ attempt: 1, trigger: 'scheduled', response_status: 200, response_excerpt: 'ok', error_code: null, next_attempt_at: null }),
    ]);
    await new Promise((r) => setTimeout(r, 200));
    expect(receiver.requests).toHaveLength(1);
  });

  it('a failed upload sends upload.failed with its error', async () => {
    await dispatcher();
    const { uploadId, deliveryId } = await finishUpload(t.pool, { tenantId, callbackUrl: receiver.url, outcome: 'failed' });
    const [req] = await receiver.waitForRequests(1);
    expect(JSON.parse(req!.body)).toMatchObject({
      type: 'upload.failed', uploadId, status: 'failed', rowsProcessed: 0, rowsFailed: 2, error: 'more than 5 rows were rejected',
    });
    expect((await waitForDelivery(t.pool, deliveryId!)).delivery_status).toBe('sent');
  });

  it('500 then 200 → two attempts, the second after the recorded backoff, same webhook-id', async () => {
    let calls = 0;
    receiver.handler = (req, res) => (++calls === 1 ? status(500)(req, res) : res.end('ok'));
    await dispatcher();
    const { deliveryId } = await finishUpload(t.pool, { tenantId, callbackUrl: receiver.url });
    expect(await waitForDelivery(t.pool, deliveryId!)).toMatchObject({ delivery_status: 'sent', attempts: 2, last_error: null });
    const [first, second] = await attemptsOf(t.pool, deliveryId!);
    expect(first).toMatchObject({ attempt: 1, response_status: 500, error_code: 'http_5xx', response_excerpt: 'status 500' });
    expect(second).toMatchObject({ attempt: 2, response_status: 200, error_code: null });
    // Full jitter in [base/4, base] for the first retry (base = 50 ms), then no sooner than scheduled.
    const scheduled = first!.next_attempt_at!.getTime();
    const firstEnded = first!.finished_at!.getTime();
    expect(scheduled - firstEnded).toBeGreaterThanOrEqual(12 - 5);
    expect(scheduled - firstEnded).toBeLessThanOrEqual(50 + 5);
    expect(receiver.requests[1]!.at).toBeGreaterThanOrEqual(scheduled - 2);
    expect(receiver.requests.map((r) => r.headers['webhook-id'])).toEqual([deliveryId, deliveryId]);
    const secret = await secretOf(tenantId);
    for (const r of receiver.requests) expect(() => new Webhook(secret).verify(r.body, r.headers as Record<string, string>)).not.toThrow();
  });

  it('always 500 → failed after exactly 4 attempts (WEBHOOK_MAX_RETRIES = 3)', async () => {
    receiver.handler = status(500);
    await dispatcher();
    const { deliveryId } = await finishUpload(t.pool, { tenantId, callbackUrl: receiver.url });
    expect(await waitForDelivery(t.pool, deliveryId!)).toMatchObject({ delivery_status: 'failed', attempts: 4, last_error: 'http_5xx: HTTP 500' });
    const attempts = await attemptsOf(t.pool, deliveryId!);
    expect(attempts.map((a) => [a.attempt, a.response_status, a.next_attempt_at === null])).toEqual([
      [1, 500, false], [2, 500, false], [3, 500, false], [4, 500, true],
    ]);
    await new Promise((r) => setTimeout(r, 300));
    expect(receiver.requests).toHaveLength(4);
  });

  it('a receiver that never answers → timeout, each attempt bounded by WEBHOOK_TIMEOUT_MS', async () => {
    receiver.handler = () => {};
    await dispatcher({ timeoutMs: 300, maxRetries: 1 });
    const { deliveryId } = await finishUpload(t.pool, { tenantId, callbackUrl: receiver.url });
    expect(await waitForDelivery(t.pool, deliveryId!)).toMatchObject({ delivery_status: 'failed', attempts: 2 });
    for (const a of await attemptsOf(t.pool, deliveryId!)) {
      expect(a).toMatchObject({ error_code: 'timeout', response_status: null });
      expect(a.duration_ms).toBeGreaterThanOrEqual(290);
      expect(a.duration_ms).toBeLessThan(1000);
    }
  });

  it('connection refused → connect_refused, retried, then failed', async () => {
    const closed = await startReceiver();
    const url = closed.url;
    await closed.close();
    await dispatcher();
    const [deliveryId] = await insertPendingDeliveries(t.pool, tenantId, url, 1);
    expect(await waitForDelivery(t.pool, deliveryId!)).toMatchObject({ delivery_status: 'failed', attempts: 4 });
    expect((await attemptsOf(t.pool, deliveryId!)).every((a) => a.error_code === 'connect_refused')).toBe(true);
  });

  it('410 Gone → failed at once, one attempt', async () => {
    receiver.handler = status(410);
    await dispatcher();
    const { deliveryId } = await finishUpload(t.pool, { tenantId, callbackUrl: receiver.url });
    expect(await waitForDelivery(t.pool, deliveryId!)).toMatchObject({ delivery_status: 'failed', attempts: 1, last_error: 'http_4xx: HTTP 410' });
    await new Promise((r) => setTimeout(r, 300));
    expect(receiver.requests).toHaveLength(1);
  });

  it('Retry-After on 503 is honoured (1 s, far above the 50 ms backoff)', async () => {
    let calls = 0;
    receiver.handler = (req, res) => (++calls === 1 ? status(503, { 'retry-after': '1' })(req, res) : res.end('ok'));
    await dispatcher();
    const { deliveryId } = await finishUpload(t.pool, { tenantId, callbackUrl: receiver.url });
    expect(await waitForDelivery(t.pool, deliveryId!)).toMatchObject({ delivery_status: 'sent', attempts: 2 });
    const [first] = await attemptsOf(t.pool, deliveryId!);
    expect(first!.next_attempt_at!.getTime() - first!.started_at.getTime()).toBeGreaterThanOrEqual(1000);
    expect(receiver.requests[1]!.at - receiver.requests[0]!.at).toBeGreaterThanOrEqual(950);
  });

  it('Retry-After on 429 is clamped to WEBHOOK_BACKOFF_MAX_MS', async () => {
    let calls = 0;
    receiver.handler = (req, res) => (++calls === 1 ? status(429, { 'retry-after': '3600' })(req, res) : res.end('ok'));
    await dispatcher({ backoffMaxMs: 300 });
    const { deliveryId } = await finishUpload(t.pool, { tenantId, callbackUrl: receiver.url });
    expect(await waitForDelivery(t.pool, deliveryId!, ['sent', 'failed'], 5000)).toMatchObject({ delivery_status: 'sent', attempts: 2 });
    const [first] = await attemptsOf(t.pool, deliveryId!);
    const wait = first!.next_attempt_at!.getTime() - first!.started_at.getTime();
    expect(wait).toBeGreaterThanOrEqual(300);
    expect(wait).toBeLessThan(300 + 200);
  });
});

describe('dispatcher: hostile receivers are bounded', () => {
  it('a 10 MB response → sent, excerpt ≤ 2 KB, read stops early', async () => {
    receiver.handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      const chunk = Buffer.alloc(64 * 1024, 'x');
      let left = 160; // 10 MiB
      const pump = () => {
        while (left > 0 && !res.destroyed) {
          left -= 1;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
    };
    await dispatcher();
    const { deliveryId } = await finishUpload(t.pool, { tenantId, callbackUrl: receiver.url });
    expect(await waitForDelivery(t.pool, deliveryId!)).toMatchObject({ delivery_status: 'sent', attempts: 1 });
    const [attempt] = await attemptsOf(t.pool, deliveryId!);
    expect(Buffer.byteLength(attempt!.response_excerpt!)).toBeLessThanOrEqual(2048);
    expect(attempt!.duration_ms).toBeLessThan(1000);
  });

  it('headers sent, body never finished → timeout within the budget', async () => {
    receiver.handler = (_req, res) => {
      res.writeHead(200);
      res.write('partial');
    };
    await dispatcher({ timeoutMs: 400, maxRetries: 0 });
    const { deliveryId } = await finishUpload(t.pool, { tenantId, callbackUrl: receiver.url });
    expect(await waitForDelivery(t.pool, deliveryId!)).toMatchObject({ delivery_status: 'failed', attempts: 1 });
    const [attempt] = await attemptsOf(t.pool, deliveryId!);
    expect(attempt).toMatchObject({ error_code: 'timeout', response_status: 200, response_excerpt: 'partial' });
    expect(attempt!.duration_ms).toBeLessThan(1000);
  });

  it('SSRF: loopback and private targets are refused with no connection made (allow-list off)', async () => {
    const p = receiver.port;
    const corpus = [
      `http://127.0.0.1:${p}/`, `http://localhost:${p}/`, `http://[::1]:${p}/`,
      `http://2130706433:${p}/`, `http://0x7f000001:${p}/`, `http://127.1:${p}/`, `http://0177.0.0.1:${p}/`,
      `http://[::ffff:127.0.0.1]:${p}/`, `http://[::ffff:7f00:1]:${p}/`, `http://[0:0:0:0:0:0:0:1]:${p}/`,
      `http://0.0.0.0:${p}/`, `http://[::]:${p}/`, `http://169.254.169.254/latest/meta-data/`,
      `http://10.0.0.1:${p}/`, `http://192.168.1.1:${p}/`, `http://172.16.0.1:${p}/`, `http://100.64.0.1:${p}/`,
      `http://[fe80::1]:${p}/`, `http://[fc00::1]:${p}/`, `http://[64:ff9b::7f00:1]:${p}/`,
    ];
    await dispatcher({ allowedCidrs: [] });
    const ids = (await Promise.all(corpus.map((url) => insertPendingDeliveries(t.pool, tenantId, url, 1)))).flat();
    for (const [i, id] of ids.entries()) {
      const state = await waitForDelivery(t.pool, id);
      expect([corpus[i], state.delivery_status, state.attempts]).toEqual([corpus[i], 'failed', 1]);
      expect((await attemptsOf(t.pool, id))[0]!.error_code).toBe('ssrf_blocked');
    }
    expect(receiver.connections).toBe(0);
    expect(receiver.requests).toHaveLength(0);
  });
});

describe('dispatcher: channels, secrets, shutdown', () => {
  it('slack channel → a { text } message, no webhook signature', async () => {
    await dispatcher();
    const { uploadId, deliveryId } = await finishUpload(t.pool, { tenantId, callbackUrl: receiver.url, channel: 'slack' });
    const [req] = await receiver.waitForRequests(1);
    const body = JSON.parse(req!.body);
    expect(Object.keys(body)).toEqual(['text']);
    expect(body.text).toContain(uploadId);
    expect(body.text).toContain('10 rows loaded, 2 rejected');
    expect(req!.headers['webhook-signature']).toBeUndefined();
    expect((await waitForDelivery(t.pool, deliveryId!)).delivery_status).toBe('sent');
  });

  it('rotation: during the overlap both the old and the new secret verify; after it only the new', async () => {
    const { tenantId: rotating } = await t.newTenantKey();
    const oldSecret = await secretOf(rotating);
    const rotated = await rotateWebhookSecret(t.db, { id: rotating });
    expect(rotated!.webhookSecret).not.toBe(oldSecret);
    await dispatcher();
    await finishUpload(t.pool, { tenantId: rotating, callbackUrl: receiver.url });
    const [req] = await receiver.waitForRequests(1);
    const headers = req!.headers as Record<string, string>;
    expect(headers['webhook-signature']!.split(' ')).toHaveLength(2);
    expect(() => new Webhook(oldSecret).verify(req!.body, headers)).not.toThrow();
    expect(() => new Webhook(rotated!.webhookSecret).verify(req!.body, headers)).not.toThrow();

    await t.pool.query(`UPDATE tenants SET previous_secret_expires_at = now() - interval '1 second' WHERE id = $1`, [rotating]);
    await finishUpload(t.pool, { tenantId: rotating, callbackUrl: receiver.url });
    const [, later] = await receiver.waitForRequests(2);
    const laterHeaders = later!.headers as Record<string, string>;
    expect(laterHeaders['webhook-signature']!.split(' ')).toHaveLength(1);
    expect(() => new Webhook(rotated!.webhookSecret).verify(later!.body, laterHeaders)).not.toThrow();
    expect(() => new Webhook(oldSecret).verify(later!.body, laterHeaders)).toThrow();
  });

  it('stop() lets an in-flight attempt finish and records it', async () => {
    receiver.handler = (_req, res) => setTimeout(() => res.end('late ok'), 400);
    const handle = await dispatcher();
    const { deliveryId } = await finishUpload(t.pool, { tenantId, callbackUrl: receiver.url });
    await receiver.waitForRequests(1);
    await handle.stop();
    expect(await deliveryState(t.pool, deliveryId!)).toMatchObject({ delivery_status: 'sent', attempts: 1 });
    expect((await attemptsOf(t.pool, deliveryId!))[0]!.response_excerpt).toBe('late ok');
  });

  it('a dropped LISTEN connection reconnects and catches up on what committed meanwhile', async () => {
    await dispatcher({}, { sweepIntervalMs: 60_000 }); // no sweep to fall back on: only LISTEN can wake it
    const { rowCount } = await t.pool.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
        WHERE datname = current_database() AND application_name = 'stream-api:dispatcher-listen'`,
    );
    expect(rowCount).toBe(1);
    const committedAt = Date.now();
    const { deliveryId } = await finishUpload(t.pool, { tenantId, callbackUrl: receiver.url });
    const [req] = await receiver.waitForRequests(1, 5000);
    expect(req!.headers['webhook-id']).toBe(deliveryId);
    expect(req!.at - committedAt).toBeLessThan(2000);
  });

  it('no callback → a skipped row, never sent', async () => {
    await dispatcher();
    const { deliveryId } = await finishUpload(t.pool, { tenantId, callbackUrl: null });
    await new Promise((r) => setTimeout(r, 300));
    const { rows } = await t.pool.query('SELECT channel, target, delivery_status, attempts FROM deliveries WHERE id = $1', [deliveryId]);
    expect(rows[0]).toEqual({ channel: 'none', target: null, delivery_status: 'skipped', attempts: 0 });
    expect(receiver.requests).toHaveLength(0);
  });
});
