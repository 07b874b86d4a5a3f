// Endpoint health against real receivers on loopback, real dispatchers and Postgres: the breaker
// opens after N failures, lets exactly one probe through at a time (two dispatchers), at a growing
// interval, without spending retry budgets, and closes on the first success, the held deliveries
// then flowing in order of seq; the abort header; the health figures of GET /endpoints.
import { afterEach, describe, expect, it } from 'vitest';
import { probeDelayMs } from '../../src/notify/breaker-policy.ts';
import { attemptsOfEndpoint, createEndpoint, deliveriesOf, runDispatcher } from '../helpers/endpoints.ts';
import { useApi } from '../helpers/env.ts';
import { request } from '../helpers/http.ts';
import { finishUpload } from '../helpers/outbox.ts';
import { startReceiver, type Receiver } from '../helpers/receiver.ts';
import { waitFor } from '../helpers/wait.ts';

const PROBE = { probeBaseMs: 150, probeMaxMs: 600 };
const ctx = useApi({
  WEBHOOK_ALLOWED_CIDRS: '127.0.0.0/8',
  WEBHOOK_BACKOFF_BASE_MS: '50',
  WEBHOOK_BACKOFF_MAX_MS: '100',
  WEBHOOK_TIMEOUT_MS: '3000',
  WEBHOOK_MAX_RETRIES: '3',
  ENDPOINT_BREAKER_THRESHOLD: '3',
  ENDPOINT_PROBE_BASE_MS: String(PROBE.probeBaseMs),
  ENDPOINT_PROBE_MAX_MS: String(PROBE.probeMaxMs),
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

async function dispatchers(count: number): Promise<void> {
  for (let i = 0; i < count; i += 1) cleanups.push(await runDispatcher(ctx.t));
}

async function health(key: string, id: string) {
  const res = await request(ctx.api.url, key, 'GET', `/endpoints/${id}`);
  expect(res.status).toBe(200);
  return res.body.health;
}

describe('circuit breaker', () => {
  it('opens after 3 failures; one probe at a time across two dispatchers, at a growing interval; the first success closes it and the held deliveries flow in order of seq', async () => {
    const { tenantId, key } = await ctx.t.newTenantKey();
    const r = await receiver();
    let healthy = false;
    // When each request arrived and was answered (this process's clock, as the dispatchers' records).
    const spans: { start: number; end: number }[] = [];
    // Slow failures: a second probe started while one is in flight would overlap it.
    r.handler = (_req, res) => {
      const span = { start: Date.now(), end: Number.POSITIVE_INFINITY };
      spans.push(span);
      setTimeout(() => {
        span.end = Date.now();
        res.statusCode = healthy ? 200 : 500;
        res.end(healthy ? 'ok' : 'down');
      }, healthy ? 0 : 250);
    };
    const e = await createEndpoint(ctx.api, key, { url: r.url, eventTypes: ['upload.completed'] });
    for (let i = 0; i < 5; i += 1) await finishUpload(ctx.t.pool, { tenantId, callbackUrl: null });
    await dispatchers(2);

    await waitFor(async () => (await health(key, e.id)).state === 'open', 15_000, 'the breaker to open');
    const opened = await health(key, e.id);
    expect(opened.consecutiveFailures).toBeGreaterThanOrEqual(3);
    expect(opened.nextProbeAt).not.toBeNull();
    // Let three probes fail, then heal the receiver.
    await waitFor(async () => (await attemptsOfEndpoint(ctx.t.pool, e.id)).filter((a) => a.trigger === 'probe' && a.finished_at).length >= 3,
      20_000, 'three failed probes');
    healthy = true;
    await waitFor(async () => (await deliveriesOf(ctx.t.pool, e.id)).every((d) => d.delivery_status === 'sent'), 20_000, 'every delivery sent');

    const attempts = await attemptsOfEndpoint(ctx.t.pool, e.id);
    const probes = attempts.filter((a) => a.trigger === 'probe');
    expect(probes.length).toBeGreaterThanOrEqual(4); // three failed, the last one succeeded
    expect(probes.at(-1)!.response_status).toBe(200);
    // While open (from the first probe to the one that succeeded) one request at a time reached the
    // receiver. Attempts claimed before the breaker opened may still be arriving as it opens: those
    // started before the first probe and are not the breaker's doing.
    const [openFrom, openUntil] = [probes[0]!.started_at.getTime() - 5, probes.at(-1)!.finished_at!.getTime()];
    const whileOpen = spans.filter((x) => x.start >= openFrom && x.start <= openUntil).sort((a, b) => a.start - b.start);
    expect(whileOpen.length).toBeGreaterThanOrEqual(probes.length);
    for (let i = 1; i < whileOpen.length; i += 1) expect(whileOpen[i]!.start).toBeGreaterThanOrEqual(whileOpen[i - 1]!.end);
    // From the first probe until the successful one, nothing but probes went out, one after the other.
    const firstProbe = attempts.indexOf(probes[0]!);
    const lastProbe = attempts.indexOf(probes.at(-1)!);
    expect(attempts.slice(firstProbe, lastProbe + 1).every((a) => a.trigger === 'probe')).toBe(true);
    for (let i = 1; i < probes.length; i += 1) {
      const gap = probes[i]!.started_at.getTime() - probes[i - 1]!.finished_at!.getTime();
      // The next probe waits the doubled delay after the failed one finished (same clock; 10 ms rounding).
      expect(gap).toBeGreaterThanOrEqual(probeDelayMs(i, PROBE) - 10);
    }
    // Probes spent no retry budget: every delivery was sent although its budget is 4 attempts.
    const deliveries = await deliveriesOf(ctx.t.pool, e.id);
    expect(deliveries.map((d) => d.delivery_status)).toEqual(Array(5).fill('sent'));
    expect(Math.max(...deliveries.map((d) => d.attempts))).toBeGreaterThan(4);
    // After the close, the held deliveries went in order of seq.
    const closedAt = probes.at(-1)!.started_at.getTime();
    const sentAfter = deliveries
      .map((d) => attempts.find((a) => a.delivery_id === d.id && a.response_status === 200 && a.trigger !== 'probe'))
      .filter((a) => a !== undefined && a.started_at.getTime() >= closedAt)
      .map((a) => a!.started_at.getTime());
    expect(sentAfter).toEqual([...sentAfter].sort((a, b) => a - b));

    // Health follows each attempt's record in a transaction of its own: wait for the last one.
    await waitFor(async () => (await health(key, e.id)).attemptsLastHour === attempts.length, 5000, 'the last attempt in the figures');
    const closed = await health(key, e.id);
    expect(closed).toMatchObject({ state: 'closed', consecutiveFailures: 0, failingSince: null, nextProbeAt: null });
    expect(Date.parse(closed.lastSuccessAt)).toBeGreaterThanOrEqual(probes.at(-1)!.started_at.getTime());
    // The hour's figures are the attempts' audit, counted as they finished.
    const failed = attempts.filter((a) => a.response_status !== 200).length;
    expect(closed.attemptsLastHour).toBe(attempts.length);
    expect(closed.failureRateLastHour).toBeCloseTo(failed / attempts.length, 3);
    const list = await request(ctx.api.url, key, 'GET', '/endpoints');
    expect(list.body.items.find((x: { id: string }) => x.id === e.id).health).toEqual(closed);
  }, 90_000);
});

describe('webhook-delivery: abort-message', () => {
  it('stops the retries of that one message, recorded as aborted; the streak is not touched', async () => {
    const { tenantId, key } = await ctx.t.newTenantKey();
    const r = await receiver();
    r.handler = (_req, res) => {
      res.statusCode = 503;
      res.setHeader('webhook-delivery', 'abort-message');
      res.end('no thanks');
    };
    const e = await createEndpoint(ctx.api, key, { url: r.url, eventTypes: ['upload.completed'] });
    await finishUpload(ctx.t.pool, { tenantId, callbackUrl: null });
    await dispatchers(1);
    await waitFor(async () => (await deliveriesOf(ctx.t.pool, e.id))[0]?.delivery_status === 'failed', 15_000, 'the delivery to fail');
    await new Promise((resolve) => setTimeout(resolve, 500)); // a retry would be due by now (backoff ≤ 100 ms)

    const [delivery] = await deliveriesOf(ctx.t.pool, e.id);
    expect(delivery).toMatchObject({ delivery_status: 'failed', attempts: 1 });
    expect(delivery!.last_error).toMatch(/^aborted: HTTP 503 with webhook-delivery: abort-message/);
    expect(r.requests).toHaveLength(1);
    const [attempt] = await attemptsOfEndpoint(ctx.t.pool, e.id);
    expect(attempt).toMatchObject({ error_code: 'aborted', response_status: 503 });
    const history = await request(ctx.api.url, key, 'GET', `/deliveries/${delivery!.id}`);
    expect(history.body.history).toMatchObject([{ errorCode: 'aborted', responseStatus: 503, state: 'failed' }]);
    expect(await health(key, e.id)).toMatchObject({ state: 'closed', consecutiveFailures: 0, attemptsLastHour: 1, failureRateLastHour: 1 });
  }, 60_000);
});
