// GET /endpoints/:id/deliveries — an endpoint's delivery log with every attempt — over real HTTP, with a
// real dispatcher and a real receiver on loopback: only that endpoint's deliveries, newest first, each
// attempt as the receiver answered it; keyset pages; ?status=; another tenant's endpoint is a 404.
import { describe, expect, it } from 'vitest';
import { createEndpoint, runDispatcher } from '../helpers/endpoints.ts';
import { useApi } from '../helpers/env.ts';
import { request } from '../helpers/http.ts';
import { finishUpload } from '../helpers/outbox.ts';
import { startReceiver } from '../helpers/receiver.ts';
import { waitFor } from '../helpers/wait.ts';

const ctx = useApi({ WEBHOOK_ALLOWED_CIDRS: '127.0.0.0/8', WEBHOOK_MAX_RETRIES: '1', WEBHOOK_BACKOFF_BASE_MS: '50', ENDPOINT_BREAKER_THRESHOLD: '1000' });

interface Attempt { attempt: number; state: string; responseStatus: number | null; responseExcerpt: string | null; durationMs: number | null; errorCode: string | null }
interface Delivery { deliveryId: string; endpointId: string; uploadId: string; event: string; status: string; history: Attempt[] }
interface Page { endpointId: string; items: Delivery[]; nextCursor: string | null }

describe('GET /endpoints/:id/deliveries', () => {
  it("lists only the endpoint's deliveries, newest first, with each attempt; pages; filters by status", async () => {
    const { tenantId, key } = await ctx.t.newTenantKey();
    // The first request of each upload fails (503 with a body), the retry succeeds.
    const seen = new Map<string, number>();
    const receiver = await startReceiver('127.0.0.1', (_req, res, received) => {
      const uploadId = (JSON.parse(received.body) as { uploadId: string }).uploadId;
      const n = (seen.get(uploadId) ?? 0) + 1;
      seen.set(uploadId, n);
      if (n === 1) res.writeHead(503).end('busy, try later');
      else res.end('thanks');
    });
    const other = await startReceiver();
    const stop = await runDispatcher(ctx.t);
    try {
      const mine = await createEndpoint(ctx.api, key, { url: receiver.url, eventTypes: ['upload.completed'] });
      const theirs = await createEndpoint(ctx.api, key, { url: other.url, eventTypes: ['upload.completed'] });
      const uploads: string[] = [];
      for (let i = 0; i < 3; i++) uploads.push((await finishUpload(ctx.t.pool, { tenantId, callbackUrl: null })).uploadId);

      let page: Page = { endpointId: '', items: [], nextCursor: null };
      await waitFor(async () => {
        page = (await request(ctx.api.url, key, 'GET', `/endpoints/${mine.id}/deliveries`)).body as Page;
        return page.items.length === 3 && page.items.every((d) => d.status === 'sent');
      }, 20_000, 'three sent deliveries');
      expect(page.endpointId).toBe(mine.id);
      expect(page.nextCursor).toBeNull();
      expect(page.items.map((d) => d.uploadId)).toEqual([...uploads].reverse());
      for (const d of page.items) {
        expect(d).toMatchObject({ endpointId: mine.id, event: 'upload.completed' });
        expect(d.history.map((a) => [a.attempt, a.state, a.responseStatus, a.responseExcerpt, a.errorCode])).toEqual([
          [1, 'failed', 503, 'busy, try later', 'http_5xx'],
          [2, 'succeeded', 200, 'thanks', null],
        ]);
        for (const a of d.history) expect(a.durationMs).toBeGreaterThanOrEqual(0);
      }
      expect(receiver.requests).toHaveLength(6);

      // Keyset pages of one: the same three, in the same order.
      const paged: string[] = [];
      let cursor: string | null = null;
      do {
        const res = await request(ctx.api.url, key, 'GET', `/endpoints/${mine.id}/deliveries?limit=1${cursor ? `&cursor=${cursor}` : ''}`);
        expect(res.status).toBe(200);
        paged.push(...(res.body as Page).items.map((d) => d.deliveryId));
        cursor = (res.body as Page).nextCursor;
      } while (cursor !== null);
      expect(paged).toEqual(page.items.map((d) => d.deliveryId));

      const sent = await request(ctx.api.url, key, 'GET', `/endpoints/${mine.id}/deliveries?status=sent`);
      expect((sent.body as Page).items).toHaveLength(3);
      const failed = await request(ctx.api.url, key, 'GET', `/endpoints/${mine.id}/deliveries?status=failed`);
      expect((failed.body as Page).items).toEqual([]);

      // The other endpoint has its own three.
      await waitFor(async () => ((await request(ctx.api.url, key, 'GET', `/endpoints/${theirs.id}/deliveries`)).body as Page).items.length === 3, 20_000, 'the other endpoint');
      const theirPage = (await request(ctx.api.url, key, 'GET', `/endpoints/${theirs.id}/deliveries`)).body as Page;
      expect(theirPage.items.every((d) => d.endpointId === theirs.id)).toBe(true);
      expect(theirPage.items.filter((d) => paged.includes(d.deliveryId))).toEqual([]);
    } finally {
      await stop();
      await receiver.close();
      await other.close();
    }
  });

  it("another tenant's endpoint, an unknown or malformed id: 404; a bad cursor or status: 400", async () => {
    const { key } = await ctx.t.newTenantKey();
    const { key: strangerKey } = await ctx.t.newTenantKey();
    const endpoint = await createEndpoint(ctx.api, key, { url: 'http://127.0.0.1:9/hook' });
    for (const [who, path] of [
      [strangerKey, `/endpoints/${endpoint.id}/deliveries`],
      [key, '/endpoints/00000000-0000-4000-8000-000000000000/deliveries'],
      [key, '/endpoints/not-an-id/deliveries'],
    ] as const) {
      const res = await request(ctx.api.url, who, 'GET', path);
      expect(res.status, path).toBe(404);
      expect(res.body.error.code).toBe('not_found');
    }
    expect((await request(ctx.api.url, key, 'GET', `/endpoints/${endpoint.id}/deliveries?cursor=zzzz`)).status).toBe(400);
    expect((await request(ctx.api.url, key, 'GET', `/endpoints/${endpoint.id}/deliveries?status=lost`)).status).toBe(400);
    expect((await request(ctx.api.url, null, 'GET', `/endpoints/${endpoint.id}/deliveries`)).status).toBe(401);
    const empty = await request(ctx.api.url, key, 'GET', `/endpoints/${endpoint.id}/deliveries`);
    expect(empty.body).toEqual({ endpointId: endpoint.id, items: [], nextCursor: null });
  });
});
