// Isolation between receivers, with real loopback receivers, real Postgres and two real dispatchers:
// a hanging endpoint does not delay a healthy one (judged against the same run without it), the
// in-flight cap and an endpoint's rateLimitPerSecond hold across both dispatchers as counted at the
// receiver, and one claim takes due deliveries round-robin across receivers (endpoints, callback hosts).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { claimDue } from '../../src/notify/outbox.repository.ts';
import { createEndpoint, runDispatcher } from '../helpers/endpoints.ts';
import { useApi } from '../helpers/env.ts';
import { insertPendingDeliveries } from '../helpers/outbox.ts';
import { startReceiver, type Receiver } from '../helpers/receiver.ts';
import { waitFor } from '../helpers/wait.ts';

const TIMEOUT_MS = 6000;
const CAP = 3;
const ctx = useApi({
  WEBHOOK_ALLOWED_CIDRS: '127.0.0.0/8',
  WEBHOOK_TIMEOUT_MS: String(TIMEOUT_MS),
  WEBHOOK_BACKOFF_BASE_MS: '60000', // a failed attempt is not retried within a test
  WEBHOOK_CONCURRENCY: '8',
  ENDPOINT_MAX_IN_FLIGHT: String(CAP),
});
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A receiver that counts the requests it holds open at once (the handler decides when to answer). */
async function receiver(answer: (res: ServerResponse) => void): Promise<Receiver & { maxOpen: () => number }> {
  let open = 0;
  let maxOpen = 0;
  const r = await startReceiver('127.0.0.1', (_req: IncomingMessage, res: ServerResponse) => {
    open += 1;
    maxOpen = Math.max(maxOpen, open);
    res.on('close', () => (open -= 1));
    answer(res);
  });
  cleanups.push(() => r.close());
  return Object.assign(r, { maxOpen: () => maxOpen });
}

async function twoDispatchers(): Promise<void> {
  for (let i = 0; i < 2; i += 1) cleanups.push(await runDispatcher(ctx.t));
}

/** `count` committed upload.completed deliveries to the endpoint (already expanded), oldest first. */
async function insertEndpointDeliveries(pool: pg.Pool, tenantId: string, endpoint: { id: string; url: string }, count: number): Promise<number> {
  await pool.query(
    `WITH u AS (
       INSERT INTO uploads (id, tenant_id, dataset, filename, size_bytes, sha256, object_key, status, attempt)
       SELECT gen_random_uuid(), $1, 'webhook_events', 'iso.csv', 1, repeat('0', 64), 'uploads/iso-' || gen_random_uuid(), 'completed', 1
         FROM generate_series(1, $4) g
       RETURNING id, tenant_id),
     e AS (
       INSERT INTO outbox_events (tenant_id, event_type, upload_id, upload_attempt, payload, expanded_at)
       SELECT tenant_id, 'upload.completed', id, 1,
              jsonb_build_object('type', 'upload.completed', 'uploadId', id, 'status', 'completed', 'timestamp', now()), now()
         FROM u
       RETURNING id, tenant_id, upload_id, payload)
     INSERT INTO deliveries (event_id, target_key, tenant_id, upload_id, upload_attempt, event, channel, target, payload, endpoint_id)
     SELECT e.id, 'endpoint:' || $3, e.tenant_id, e.upload_id, 1, 'upload.completed', 'webhook', $2, e.payload, $3::uuid FROM e`,
    [tenantId, endpoint.url, endpoint.id, count],
  );
  return Date.now();
}

async function endpointFor(key: string, r: Receiver, extra: Record<string, unknown> = {}): Promise<{ id: string; url: string }> {
  const { id } = await createEndpoint(ctx.api, key, { url: r.url, ...extra });
  return { id, url: r.url };
}

describe('isolation between receivers', () => {
  it('a hanging endpoint with older deliveries does not delay a healthy one (two dispatchers, compared with a run without it)', async () => {
    await twoDispatchers();
    const { tenantId, key } = await ctx.t.newTenantKey();
    const healthy = await receiver((res) => res.end('ok'));
    const hanging = await receiver(() => {}); // never answers: every attempt runs into the timeout
    const healthyEp = await endpointFor(key, healthy);
    const hangingEp = await endpointFor(key, hanging);
    const N = 30;

    // Alone: the time from commit to the last receipt.
    const aloneFrom = await insertEndpointDeliveries(ctx.t.pool, tenantId, healthyEp, N);
    await healthy.waitForRequests(N, 30_000);
    const alone = healthy.requests[N - 1]!.at - aloneFrom;

    // Beside a hanging endpoint whose 40 deliveries are older (first in line by due time): with both
    // dispatchers' 16 slots, it takes 3 of them (CAP); the healthy deliveries take the others.
    await insertEndpointDeliveries(ctx.t.pool, tenantId, hangingEp, 40);
    await waitFor(() => hanging.requests.length >= CAP, 10_000, 'the hanging endpoint to hold its slots');
    const besideFrom = await insertEndpointDeliveries(ctx.t.pool, tenantId, healthyEp, N);
    await healthy.waitForRequests(2 * N, 30_000);
    const beside = healthy.requests[2 * N - 1]!.at - besideFrom;

    // Without isolation the healthy ones wait out the hanging attempts (TIMEOUT_MS). Generous ratio
    // for a loaded machine, and well under the timeout the hanging endpoint holds its slots for.
    expect(beside, `healthy alone ${alone} ms, beside the hanging endpoint ${beside} ms`).toBeLessThan(Math.max(5 * alone, 1500));
    expect(beside).toBeLessThan(TIMEOUT_MS / 2);
    expect(hanging.requests.length).toBe(CAP); // its slots are all it had, across both dispatchers
    expect(hanging.maxOpen()).toBe(CAP);
    await ctx.t.pool.query(`UPDATE deliveries SET delivery_status = 'skipped' WHERE tenant_id = $1 AND delivery_status = 'pending'`, [tenantId]);
  });

  it('the in-flight cap per endpoint holds across two dispatchers, counted at the receiver', async () => {
    await twoDispatchers();
    const { tenantId, key } = await ctx.t.newTenantKey();
    const slow = await receiver((res) => setTimeout(() => res.end('ok'), 150));
    const ep = await endpointFor(key, slow);
    await insertEndpointDeliveries(ctx.t.pool, tenantId, ep, 24);
    await slow.waitForRequests(24, 30_000);
    // 16 slots between the two dispatchers, never more than CAP of them on this endpoint — and the
    // cap is reached, so the bound is not met by a dispatcher that sends one at a time.
    expect(slow.maxOpen()).toBe(CAP);
  });

  it('rateLimitPerSecond holds across two dispatchers, measured at the receiver', async () => {
    await twoDispatchers();
    const { tenantId, key } = await ctx.t.newTenantKey();
    const r = await receiver((res) => res.end('ok'));
    const RATE = 10;
    const N = 40;
    const ep = await endpointFor(key, r, { rateLimitPerSecond: RATE });
    await insertEndpointDeliveries(ctx.t.pool, tenantId, ep, N);
    await r.waitForRequests(N, 30_000);
    const at = r.requests.map((q) => q.at).sort((a, b) => a - b);
    // Any 2-second window: at most RATE·2 plus the burst tolerance (one request, 100 ms worth) and a
    // request of slack for the receiver's clock; overall the rate is the limit's, not more.
    for (let i = 0; i < at.length; i += 1) {
      const inWindow = at.filter((t) => t >= at[i]! && t < at[i]! + 2000).length;
      expect(inWindow, `requests in the 2 s from #${i}`).toBeLessThanOrEqual(2 * RATE + 3);
    }
    const perSecond = (N - 1) / ((at.at(-1)! - at[0]!) / 1000);
    expect(perSecond).toBeLessThanOrEqual(RATE * 1.15);
  });

  it('one claim takes due deliveries round-robin across receivers: a backlog of one takes no more than its share', async () => {
    const { tenantId, key } = await ctx.t.newTenantKey();
    const big = await endpointFor(key, { url: 'http://127.0.0.1:9/big' } as Receiver);
    const small = await endpointFor(key, { url: 'http://127.0.0.1:9/small' } as Receiver);
    await insertEndpointDeliveries(ctx.t.pool, tenantId, big, 50); // older: first by due time
    await insertEndpointDeliveries(ctx.t.pool, tenantId, small, 4);
    const claimed = await claimDue(ctx.t.pool, 10, 60_000, 3, new Date(), 100);
    const count = (id: string) => claimed.filter((c) => c.endpoint_id === id).length;
    expect(claimed).toHaveLength(10);
    expect(count(small.id)).toBe(4);
    expect(count(big.id)).toBe(6);
    // The cap applies to the same claim: 6 of big's are leased, so a cap of 8 leaves it 2.
    const next = await claimDue(ctx.t.pool, 10, 60_000, 3, new Date(), 8);
    expect(next.map((c) => c.endpoint_id)).toEqual([big.id, big.id]);
    await ctx.t.pool.query(`UPDATE deliveries SET delivery_status = 'skipped' WHERE tenant_id = $1`, [tenantId]);
  });

  it('callbackUrl deliveries are claimed round-robin by host, and not capped (one receiver often takes every callback)', async () => {
    const { tenantId } = await ctx.t.newTenantKey();
    await insertPendingDeliveries(ctx.t.pool, tenantId, 'http://127.0.0.1:9/a', 50); // older
    const small = await insertPendingDeliveries(ctx.t.pool, tenantId, 'http://LOCALHOST:9/b', 4);
    const claimed = await claimDue(ctx.t.pool, 10, 60_000, 3, new Date(), 3);
    expect(claimed).toHaveLength(10);
    expect(claimed.filter((c) => small.includes(c.id))).toHaveLength(4);
    // A cap of 3 applies to endpoints only: the next claim still takes 10 callbacks to one host.
    expect(await claimDue(ctx.t.pool, 10, 60_000, 3, new Date(), 3)).toHaveLength(10);
    await ctx.t.pool.query(`UPDATE deliveries SET delivery_status = 'skipped' WHERE tenant_id = $1`, [tenantId]);
  });
});
