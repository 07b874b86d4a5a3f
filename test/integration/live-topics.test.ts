// An upload's live topic belongs to its tenant: another tenant who knows the id and asks first gets a
// 404 before any stream opens, and cannot make the owner miss its events.
import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import { notifyUpload } from '../../src/ingest/upload-state.ts';
import { useApi } from '../helpers/env.ts';
import { insertIdleUpload, lockWaiters, openSse, openWs } from '../helpers/live.ts';

const suite = useApi();

/** Holds every read of `uploads` until released: parks requests mid-way, in the order they arrive. */
async function lockUploads(): Promise<{ release(): Promise<void> }> {
  const client: pg.PoolClient = await suite.t.pool.connect();
  await client.query('BEGIN');
  await client.query('LOCK TABLE uploads IN ACCESS EXCLUSIVE MODE');
  return {
    async release() {
      await client.query('COMMIT');
      client.release();
    },
  };
}

describe('live topics are per tenant', () => {
  it("another tenant asking first for the owner's upload id gets 404; the owner still gets progress and done", async () => {
    const owner = await suite.t.newTenantKey();
    const other = await suite.t.newTenantKey();
    const id = await insertIdleUpload(suite.t, owner.tenantId);

    // The other tenant's request arrives first and is parked mid-way; then the owner's SSE and WebSocket.
    const lock = await lockUploads();
    const foreignOpening = openSse(suite.api.url, `/uploads/${id}/events`, { key: other.key });
    await expect.poll(() => lockWaiters(suite.t)).toBe(1);
    const ownerOpening = openSse(suite.api.url, `/uploads/${id}/events`, { key: owner.key });
    await expect.poll(() => lockWaiters(suite.t)).toBe(2);
    const ownerWsOpening = openWs(suite.api.url, `/uploads/${id}/ws`, owner.key);
    await expect.poll(() => lockWaiters(suite.t)).toBe(3);
    await lock.release();

    const foreign = await foreignOpening;
    expect(foreign.status).toBe(404);
    expect(foreign.body.error.code).toBe('not_found');
    const stream = await ownerOpening;
    const ws = await ownerWsOpening;
    expect(stream.status).toBe(200);
    expect(ws.rejected).toBeUndefined();
    await stream.waitFor((e) => e.event === 'status');
    await expect.poll(() => ws.messages.length).toBe(1);

    await suite.t.pool.query(
      `UPDATE uploads SET status = 'processing', attempt = 1, started_at = now(), rows_processed = 7, bytes_processed = 40
        WHERE id = $1`,
      [id],
    );
    await notifyUpload(suite.t.pool, id);
    await stream.waitFor((e) => e.event === 'progress' && e.data.rowsProcessed === 7, 5000);
    await expect.poll(() => ws.messages.some((m) => m.event === 'progress'), { timeout: 5000 }).toBe(true);

    await suite.t.pool.query(`UPDATE uploads SET status = 'completed', completed_at = now() WHERE id = $1`, [id]);
    await notifyUpload(suite.t.pool, id);
    await stream.ended;
    expect(stream.events.map((e) => e.event)).toEqual(['status', 'status', 'progress', 'done']);
    expect(stream.events.at(-1)!.data).toMatchObject({ uploadId: id, status: 'completed' });
    expect(await ws.closed).toEqual({ code: 1000, reason: 'done' });
    expect(ws.messages.map((m) => m.event)).toEqual(['status', 'status', 'progress', 'done']);
    await expect.poll(() => suite.api.app.liveHub.subscriberCount).toBe(0);
    expect(suite.api.app.liveHub.topicCount).toBe(0);
  });

  it('a foreign or unknown id is a 404 on every transport, and never creates a topic', async () => {
    const owner = await suite.t.newTenantKey();
    const other = await suite.t.newTenantKey();
    const id = await insertIdleUpload(suite.t, owner.tenantId);
    const watching = await openSse(suite.api.url, `/uploads/${id}/events`, { key: owner.key });
    await watching.waitFor((e) => e.event === 'status');
    expect(suite.api.app.liveHub.topicCount).toBe(1);

    for (const target of [id, crypto.randomUUID()]) {
      const sse = await openSse(suite.api.url, `/uploads/${target}/events`, { key: other.key });
      expect(sse.status).toBe(404);
      const ws = await openWs(suite.api.url, `/uploads/${target}/ws`, other.key);
      expect(ws.rejected?.status).toBe(404);
      expect(suite.api.app.liveHub.topicCount).toBe(1);
      expect(suite.api.app.liveHub.subscriberCount).toBe(1);
    }
    watching.close();
    await expect.poll(() => suite.api.app.liveHub.topicCount).toBe(0);
  });
});
