// GET /uploads/:id/events and GET /events over real HTTP, fed by the real worker through NOTIFY.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WorkerHandle } from '../../src/ingest/worker.ts';
import { createTestEnv, startApi, type TestEnv } from '../helpers/env.ts';
import { request, upload } from '../helpers/http.ts';
import { generateEvents } from '../helpers/generate.ts';
import { insertIdleUpload, openSse, type SseEvent } from '../helpers/live.ts';
import { startTestWorker, waitForStatus } from '../helpers/worker.ts';

const ROWS = 100_000;
const SMALL_CSV = 'event_id,event_type,occurred_at\n0b7f2c4e-1111-4a2b-a333-123456789abc,invoice.paid,2025-01-01T00:00:00Z\n';

let t: TestEnv;
let api: Awaited<ReturnType<typeof startApi>>;
let dir: string;
let file: string;
let tenant: { tenantId: string; key: string };
const workers: WorkerHandle[] = [];

beforeAll(async () => {
  t = await createTestEnv();
  api = await startApi(t);
  tenant = await t.newTenantKey();
  dir = await mkdtemp(path.join(os.tmpdir(), 'stream-api-live-'));
  file = path.join(dir, 'events.csv');
  await generateEvents(ROWS, file);
});
afterAll(async () => {
  for (const w of workers) await w.stop();
  await api?.close();
  await t?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Reads the stored file at ~6 MB/s, so a load lasts seconds and shows progress. */
function throttled(body: Readable): Readable {
  const bytesPerMs = 6 * 1024;
  const slow = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      setTimeout(() => cb(null, chunk), chunk.length / bytesPerMs);
    },
  });
  body.on('error', (err) => slow.destroy(err));
  return body.pipe(slow);
}

async function send(key: string, content?: string): Promise<string> {
  const res = await upload(api.url, key, { file: content === undefined ? { path: file } : { content } });
  expect(res.status).toBe(202);
  return res.body.uploadId;
}

const names = (events: SseEvent[]) => events.map((e) => e.event);

describe('GET /uploads/:id/events', () => {
  it('streams status → progress (≤ ~1/s, with a rate) → done for a real load, then closes', async () => {
    const id = await send(tenant.key);
    const stream = await openSse(api.url, `/uploads/${id}/events`, { key: tenant.key });
    expect(stream.status).toBe(200);
    expect(stream.headers['content-type']).toMatch(/^text\/event-stream/);
    expect(stream.headers['cache-control']).toMatch(/no-cache/);
    expect(stream.headers['x-accel-buffering']).toBe('no');
    await stream.waitFor((e) => e.event === 'status');
    expect(stream.events[0]).toMatchObject({ event: 'status', data: { uploadId: id, status: 'uploaded' } });

    // The worker starts only now, ticking every 100 ms: the stream must still pass on at most ~1/s.
    workers.push(await startTestWorker(t, { progressIntervalMs: 100, wrapSource: throttled }));
    await stream.ended;

    const events = stream.events;
    expect(events.at(-1)!.event).toBe('done');
    expect(events.at(-1)!.data).toMatchObject({ uploadId: id, status: 'completed', rowsProcessed: ROWS, progress: 1 });
    expect(names(events).filter((n) => n === 'done')).toHaveLength(1);
    expect(names(events.filter((e) => e.event === 'status'))).toHaveLength(2);
    expect(events[1]).toMatchObject({ event: 'status', data: { status: 'processing', attempt: 1 } });

    const progress = events.filter((e) => e.event === 'progress');
    expect(progress.length).toBeGreaterThanOrEqual(2);
    for (const p of progress) {
      expect(Object.keys(p.data).sort()).toEqual(
        ['bytesProcessed', 'progress', 'rowsFailed', 'rowsPerSecond', 'rowsProcessed', 'status', 'uploadId'].sort(),
      );
      expect(p.data).toMatchObject({ uploadId: id, status: 'processing' });
    }
    expect(progress.at(-1)!.data.rowsPerSecond).toBeGreaterThan(0);
    expect(progress[0]!.data.bytesProcessed).toBeGreaterThan(0);
    for (let i = 1; i < progress.length; i++) {
      expect(progress[i]!.data.bytesProcessed).toBeGreaterThanOrEqual(progress[i - 1]!.data.bytesProcessed);
      expect(progress[i]!.receivedAt - progress[i - 1]!.receivedAt).toBeGreaterThan(700);
    }
    // Order: status(uploaded), status(processing), progress…, done.
    expect(names(events)).toEqual(['status', 'status', ...progress.map(() => 'progress'), 'done']);

    // Every event has an id, increasing.
    const ids = events.map((e) => BigInt(e.id!));
    for (let i = 1; i < ids.length; i++) expect(ids[i]! > ids[i - 1]!).toBe(true);

    // `status` and `done` carry exactly the body of GET /uploads/:id.
    const get = await request(api.url, tenant.key, 'GET', `/uploads/${id}`);
    expect(Object.keys(events.at(-1)!.data).sort()).toEqual(Object.keys(get.body).sort());
    expect(events.at(-1)!.data).toEqual(get.body);
  });

  it('after the end: a fresh client gets status then done; a resuming one (Last-Event-ID) gets done at once', async () => {
    const id = await send(tenant.key, SMALL_CSV);
    await waitForStatus(t, id, ['completed']);

    const fresh = await openSse(api.url, `/uploads/${id}/events`, { key: tenant.key });
    await fresh.ended;
    expect(names(fresh.events)).toEqual(['status', 'done']);
    expect(fresh.events[1]!.data).toMatchObject({ uploadId: id, status: 'completed' });

    const resumed = await openSse(api.url, `/uploads/${id}/events`, {
      key: tenant.key,
      headers: { 'last-event-id': fresh.events[0]!.id! },
    });
    await resumed.ended;
    expect(names(resumed.events)).toEqual(['done']);
    expect(resumed.events[0]!.id).toBeTruthy();
    expect(resumed.events[0]!.data).toMatchObject({ uploadId: id, status: 'completed', rowsProcessed: 1 });
    expect(api.app.liveHub.subscriberCount).toBe(0);
  });

  it("answers 404 JSON (no stream) for another tenant's upload or a malformed id, 401 without a key", async () => {
    const id = await send(tenant.key, SMALL_CSV);
    const other = await t.newTenantKey();
    for (const pathname of [`/uploads/${id}/events`, '/uploads/not-a-uuid/events', `/uploads/${crypto.randomUUID()}/events`]) {
      const res = await openSse(api.url, pathname, { key: other.key });
      expect(res.status).toBe(404);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(res.body.error.code).toBe('not_found');
    }
    for (const key of [null, 'sapi_wrong']) {
      const res = await openSse(api.url, `/uploads/${id}/events`, { key });
      expect(res.status).toBe(401);
      expect(res.body.error.code).toBe('unauthorized');
      expect((await openSse(api.url, '/events', { key })).status).toBe(401);
    }
    expect(api.app.liveHub.subscriberCount).toBe(0);
  });

  it('an idle stream stays open and unsubscribes when the client leaves', async () => {
    const idle = await insertIdleUpload(t, tenant.tenantId);

    const stream = await openSse(api.url, `/uploads/${idle}/events`, { key: tenant.key });
    await stream.waitFor((e) => e.event === 'status');
    expect(api.app.liveHub.subscriberCount).toBe(1);
    stream.close();
    await expect.poll(() => api.app.liveHub.subscriberCount).toBe(0);
  });
});

describe('GET /events', () => {
  it("streams every upload event of the caller's tenant only, with progress and rowsPerSecond", async () => {
    const mine = await t.newTenantKey();
    const other = await t.newTenantKey();
    const feed = await openSse(api.url, '/events', { key: mine.key });
    const otherFeed = await openSse(api.url, '/events', { key: other.key });
    expect(feed.status).toBe(200);
    expect(feed.headers['x-accel-buffering']).toBe('no');

    const id = await send(mine.key, SMALL_CSV);
    const done = await feed.waitFor((e) => e.data.uploadId === id && e.data.status === 'completed');
    expect(done.event).toBe('upload');
    expect(done.id).toBeTruthy();
    expect(done.data).toMatchObject({ uploadId: id, tenantId: mine.tenantId, rowsProcessed: 1, progress: 1, rowsPerSecond: 0 });
    expect(Object.keys(done.data).sort()).toEqual(
      ['at', 'attempt', 'bytesProcessed', 'error', 'progress', 'rowsFailed', 'rowsPerSecond', 'rowsProcessed', 'sizeBytes', 'status', 'tenantId', 'uploadId'].sort(),
    );
    expect(feed.events.filter((e) => e.data.uploadId === id).map((e) => e.data.status)).toEqual(['processing', 'completed']);

    const theirs = await send(other.key, SMALL_CSV);
    await otherFeed.waitFor((e) => e.data.uploadId === theirs && e.data.status === 'completed');
    expect(feed.events.some((e) => e.data.uploadId === theirs)).toBe(false);
    expect(otherFeed.events.some((e) => e.data.uploadId === id)).toBe(false);
    expect(feed.isEnded()).toBe(false);

    feed.close();
    otherFeed.close();
    await expect.poll(() => api.app.liveHub.subscriberCount).toBe(0);
  });
});
