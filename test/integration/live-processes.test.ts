// The live stream when the worker is another process: everything reaches the API through NOTIFY.
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestEnv, startApi, type TestEnv } from '../helpers/env.ts';
import { upload } from '../helpers/http.ts';
import { generateEvents } from '../helpers/generate.ts';
import { openSse } from '../helpers/live.ts';
import { spawnService, uploadState } from '../helpers/worker.ts';

const ROWS = 600_000;

let t: TestEnv;
let api: Awaited<ReturnType<typeof startApi>>;
let dir: string;
let file: string;

beforeAll(async () => {
  t = await createTestEnv({ WORKER_LEASE_SECONDS: '3' });
  api = await startApi(t);
  dir = await mkdtemp(path.join(os.tmpdir(), 'stream-api-live-'));
  file = path.join(dir, 'events.csv');
  await generateEvents(ROWS, file);
});
afterAll(async () => {
  await api?.close();
  await t?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('API and worker in different processes', () => {
  it('streams status → progress → done of a load run by a spawned worker', async () => {
    const { key } = await t.newTenantKey();
    const res = await upload(api.url, key, { file: { path: file } });
    expect(res.status).toBe(202);
    const id = res.body.uploadId as string;

    const stream = await openSse(api.url, `/uploads/${id}/events`, { key });
    await stream.waitFor((e) => e.event === 'status');
    const worker = spawnService(t, 'worker');
    const exited = once(worker, 'exit');
    try {
      await stream.ended;
    } finally {
      worker.kill('SIGTERM');
      await exited;
    }
    const events = stream.events;
    const kinds = events.map((e) => e.event);
    expect(kinds[0]).toBe('status');
    expect(kinds.at(-1)).toBe('done');
    expect(events.find((e) => e.event === 'status' && e.data.status === 'processing')).toBeTruthy();
    const progress = events.filter((e) => e.event === 'progress');
    expect(progress.length).toBeGreaterThanOrEqual(1);
    expect(progress[0]!.data).toMatchObject({ uploadId: id, status: 'processing' });
    expect(progress[0]!.data.rowsProcessed).toBeGreaterThan(0);
    expect(events.at(-1)!.data).toMatchObject({ uploadId: id, status: 'completed', rowsProcessed: ROWS });
    expect((await uploadState(t, id)).status).toBe('completed');
  }, 120_000);

  it('follows a re-run after the worker is SIGKILLed mid-load: processing again (attempt 2), then done', async () => {
    const { key } = await t.newTenantKey();
    const res = await upload(api.url, key, { file: { path: file } });
    const id = res.body.uploadId as string;
    const stream = await openSse(api.url, `/uploads/${id}/events`, { key });

    const first = spawnService(t, 'worker');
    const firstExited = once(first, 'exit');
    try {
      await stream.waitFor((e) => e.event === 'progress', 60_000);
    } finally {
      first.kill('SIGKILL');
      await firstExited;
    }
    const second = spawnService(t, 'worker');
    const secondExited = once(second, 'exit');
    try {
      await stream.ended;
    } finally {
      second.kill('SIGTERM');
      await secondExited;
    }
    const statuses = stream.events
      .filter((e) => e.event !== 'progress')
      .map((e) => `${e.event}:${e.data.status}:${e.data.attempt}`);
    expect(statuses).toEqual(['status:uploaded:0', 'status:processing:1', 'status:processing:2', 'done:completed:2']);
    expect(stream.events.at(-1)!.data.rowsProcessed).toBe(ROWS);
  }, 120_000);
});
