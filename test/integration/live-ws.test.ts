// GET /uploads/:id/ws: the same events as the SSE stream, as JSON messages, over a real socket.
import { afterAll, describe, expect, it } from 'vitest';
import type { WorkerHandle } from '../../src/ingest/worker.ts';
import { useApi } from '../helpers/env.ts';
import { request, upload } from '../helpers/http.ts';
import { openSse, openWs as openWsAt } from '../helpers/live.ts';
import { startTestWorker } from '../helpers/worker.ts';

const suite = useApi();

const CSV =
  'event_id,event_type,occurred_at\n' +
  Array.from({ length: 2000 }, (_, i) => `${crypto.randomUUID()},invoice.paid,2025-01-01T00:00:${String(i % 60).padStart(2, '0')}Z`).join('\n') +
  '\n';

let worker: WorkerHandle | undefined;

afterAll(async () => {
  await worker?.stop();
});

function openWs(pathname: string, key: string | null) {
  return openWsAt(suite.api.url, pathname, key);
}

async function send(key: string): Promise<string> {
  const res = await upload(suite.api.url, key, { file: { content: CSV } });
  expect(res.status).toBe(202);
  return res.body.uploadId;
}

describe('GET /uploads/:id/ws', () => {
  it('receives the same events as the SSE stream, then a normal close after done', async () => {
    const { key } = await suite.t.newTenantKey();
    const id = await send(key);
    const ws = await openWs(`/uploads/${id}/ws`, key);
    const sse = await openSse(suite.api.url, `/uploads/${id}/events`, { key });
    expect(ws.rejected).toBeUndefined();
    await expect.poll(() => ws.messages.length).toBeGreaterThan(0);
    expect(ws.messages[0]).toMatchObject({ event: 'status', data: { uploadId: id, status: 'uploaded' } });

    worker = await startTestWorker(suite.t, { progressIntervalMs: 100 });
    const { code } = await ws.closed;
    await sse.ended;
    expect(code).toBe(1000);
    for (const m of ws.messages) {
      expect(Object.keys(m).sort()).toEqual(['data', 'event', 'id']);
      expect(m.id).toMatch(/^\d+$/);
    }
    // Same event sequence and payloads (ids differ: each stream numbers its own events).
    const shape = (events: { event: string; data: any }[]) =>
      events.filter((e) => e.event !== 'progress').map((e) => ({ event: e.event, status: e.data.status, attempt: e.data.attempt }));
    expect(shape(ws.messages)).toEqual(shape(sse.events));
    expect(shape(ws.messages)).toEqual([
      { event: 'status', status: 'uploaded', attempt: 0 },
      { event: 'status', status: 'processing', attempt: 1 },
      { event: 'done', status: 'completed', attempt: 1 },
    ]);
    const get = await request(suite.api.url, key, 'GET', `/uploads/${id}`);
    expect(ws.messages.at(-1)!.data).toEqual(get.body);
    expect(sse.events.at(-1)!.data).toEqual(get.body);
    await expect.poll(() => suite.api.app.liveHub.subscriberCount).toBe(0);
  });

  it('after the end, sends status and done at once and closes', async () => {
    const { key } = await suite.t.newTenantKey();
    const id = await send(key);
    await expect.poll(async () => (await request(suite.api.url, key, 'GET', `/uploads/${id}`)).body.status, { timeout: 30_000 }).toBe('completed');
    const ws = await openWs(`/uploads/${id}/ws`, key);
    expect((await ws.closed).code).toBe(1000);
    expect(ws.messages.map((m) => m.event)).toEqual(['status', 'done']);
  });

  it('rejects the upgrade with HTTP 404 for another tenant and 401 without a key; a token works', async () => {
    const owner = await suite.t.newTenantKey();
    const other = await suite.t.newTenantKey();
    const id = await send(owner.key);

    const notFound = await openWs(`/uploads/${id}/ws`, other.key);
    expect(notFound.rejected).toEqual({ status: 404, body: { error: { code: 'not_found', message: 'upload not found' } } });
    const unauthorized = await openWs(`/uploads/${id}/ws`, null);
    expect(unauthorized.rejected?.status).toBe(401);
    // A plain GET (no upgrade) is a JSON 400, not a hang.
    const plain = await request(suite.api.url, owner.key, 'GET', `/uploads/${id}/ws`);
    expect(plain.status).toBe(400);
    expect(plain.body.error.code).toBe('validation_failed');

    const { body } = await request(suite.api.url, owner.key, 'POST', '/auth/token');
    const withToken = await openWs(`/uploads/${id}/ws?token=${encodeURIComponent(body.token)}`, null);
    expect(withToken.rejected).toBeUndefined();
    await expect.poll(() => withToken.messages.length).toBeGreaterThan(0);
    expect(withToken.messages[0]!.data.uploadId).toBe(id);
    withToken.socket.close();
    await withToken.closed;
    await expect.poll(() => suite.api.app.liveHub.subscriberCount).toBe(0);
  });
});
