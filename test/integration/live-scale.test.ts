// The hub's promises: one LISTEN connection however many clients; a client that leaves costs
// nothing; the access of all open streams is re-checked in one query; a lost LISTEN connection comes
// back and catches its subscribers up; shutdown ends streams.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { notifyUpload } from '../../src/ingest/upload-state.ts';
import { findValidGrants } from '../../src/live/access.repository.ts';
import { createAccessToken } from '../../src/live/access-tokens.repository.ts';
import { createApiKey, hashApiKey, revokeApiKey } from '../../src/tenants/tenants.repository.ts';
import { startApi, useApi } from '../helpers/env.ts';
import { insertIdleUpload, openSse, type SseStream } from '../helpers/live.ts';

const suite = useApi();

const CLIENTS = 1000;

async function connectionsToTestDb(): Promise<{ total: number; live: number }> {
  const { rows } = await suite.t.pool.query(
    `SELECT count(*)::int AS total, count(*) FILTER (WHERE application_name = 'stream-api:live')::int AS live
       FROM pg_stat_activity WHERE datname = current_database()`,
  );
  return rows[0];
}

const hashOf = (token: string) => createHash('sha256').update(token).digest();

async function openMany(count: number, open: (i: number) => Promise<SseStream>): Promise<SseStream[]> {
  const streams: SseStream[] = [];
  for (let i = 0; i < count; i += 100) {
    streams.push(...(await Promise.all(Array.from({ length: Math.min(100, count - i) }, (_, j) => open(i + j)))));
  }
  return streams;
}

describe('live hub', () => {
  it(`serves ${CLIENTS} idle SSE clients from one LISTEN connection, and forgets them when they leave`, async () => {
    const { key, tenantId } = await suite.t.newTenantKey();
    const uploads = await Promise.all(Array.from({ length: 10 }, () => insertIdleUpload(suite.t, tenantId)));
    // Fill the pool to its maximum first, so requests cannot add pooled connections during the count.
    await Promise.all(Array.from({ length: 10 }, () => suite.t.pool.query('SELECT pg_sleep(0.05)')));
    const before = await connectionsToTestDb();
    expect(before.live).toBe(0);

    const streams = await openMany(CLIENTS, (i) =>
      openSse(suite.api.url, i % 2 === 0 ? `/uploads/${uploads[i % 10]}/events` : '/events', { key }),
    );
    expect(streams.every((s) => s.status === 200)).toBe(true);
    expect(suite.api.app.liveHub.subscriberCount).toBe(CLIENTS);

    const during = await connectionsToTestDb();
    expect(during.live).toBe(1);
    expect(during.total - before.total).toBeLessThanOrEqual(2);

    // One NOTIFY reaches every subscriber of that upload and every feed of the tenant.
    const target = uploads[0]!;
    await suite.t.pool.query(`UPDATE uploads SET status = 'processing', attempt = 1, started_at = now() WHERE id = $1`, [target]);
    await notifyUpload(suite.t.pool, target);
    const watching = streams.filter((_, i) => i % 2 === 0 && i % 10 === 0);
    const feeds = streams.filter((_, i) => i % 2 === 1);
    await Promise.all(watching.map((s) => s.waitFor((e) => e.event === 'status' && e.data.status === 'processing', 10_000)));
    await Promise.all(feeds.map((s) => s.waitFor((e) => e.data.uploadId === target, 10_000)));
    const others = streams.filter((_, i) => i % 2 === 0 && i % 10 !== 0);
    expect(others.every((s) => s.events.length === 1)).toBe(true);

    for (const s of streams) s.close();
    await expect.poll(() => suite.api.app.liveHub.subscriberCount, { timeout: 10_000 }).toBe(0);
    expect((await connectionsToTestDb()).live).toBe(1); // the hub's connection stays, for the next clients
  }, 60_000);

  it(`re-checks the access of ${CLIENTS} open streams (each its own token) in one query, and ends exactly a revoked key's`, async () => {
    const KEYS = 50;
    const { tenantId } = await suite.t.newTenantKey();
    const keys = [await createApiKey(suite.t.db, tenantId)];
    while (keys.length < KEYS) keys.push(await createApiKey(suite.t.db, tenantId));
    const uploads = await Promise.all(Array.from({ length: 100 }, () => insertIdleUpload(suite.t, tenantId)));
    const tokens: string[] = [];
    for (let i = 0; i < CLIENTS; i++) tokens.push((await createAccessToken(suite.t.db, hashApiKey(keys[i % KEYS]!), 300))!.token);
    const streams = await openMany(CLIENTS, (i) => {
      const query = `?token=${encodeURIComponent(tokens[i]!)}`;
      return openSse(suite.api.url, i % 2 === 0 ? `/uploads/${uploads[(i >> 1) % 100]}/events${query}` : `/events${query}`);
    });
    expect(streams.every((s) => s.status === 200)).toBe(true);
    const hub = suite.api.app.liveHub;

    // Pool checkouts per check: every query through the pool takes one (the heartbeat's checks count too).
    let acquired = 0;
    const onAcquire = () => acquired++;
    suite.t.pool.on('acquire', onAcquire);
    const checksBefore = hub.accessChecks.checks;
    const durations: number[] = [];
    for (let i = 0; i < 5; i++) {
      await hub.checkAccess();
      durations.push(hub.accessChecks.last!.durationMs);
    }
    suite.t.pool.off('acquire', onAcquire);
    const checks = hub.accessChecks.checks - checksBefore;
    expect(checks).toBeGreaterThanOrEqual(5);
    expect(acquired).toBe(checks);
    expect(hub.accessChecks.last).toMatchObject({ streams: CLIENTS, apiKeys: KEYS, tokens: CLIENTS, uploads: 100, ended: 0 });

    // What the per-stream alternative would cost: one query per stream per heartbeat.
    const perStreamStarted = performance.now();
    for (let i = 0; i < CLIENTS; i++) {
      await findValidGrants(suite.t.db, { apiKeyIds: [], tokenHashes: [hashOf(tokens[i]!)], uploadIds: i % 2 === 0 ? [uploads[(i >> 1) % 100]!] : [] });
    }
    const perStreamMs = performance.now() - perStreamStarted;
    const batchMs = Math.min(...durations);
    console.info(
      `access re-check of ${CLIENTS} streams (${KEYS} keys, ${CLIENTS} tokens, 100 uploads): 1 query per heartbeat, ` +
        `${batchMs.toFixed(1)}–${Math.max(...durations).toFixed(1)} ms; one query per stream instead: ${perStreamMs.toFixed(0)} ms`,
    );

    // Revoking one key ends its 20 streams on the next check, and only those.
    await revokeApiKey(suite.t.db, keys[0]!);
    await hub.checkAccess();
    expect(hub.accessChecks.last!.ended).toBe(CLIENTS / KEYS);
    const doomed = streams.filter((_, i) => i % KEYS === 0);
    await Promise.all(doomed.map((s) => s.ended));
    for (const s of doomed) expect(s.events.at(-1)?.data).toMatchObject({ error: { code: 'key_revoked' } });
    expect(hub.subscriberCount).toBe(CLIENTS - CLIENTS / KEYS);
    expect(streams.filter((s) => s.isEnded())).toHaveLength(CLIENTS / KEYS);

    for (const s of streams) s.close();
    await expect.poll(() => hub.subscriberCount, { timeout: 10_000 }).toBe(0);
  }, 120_000);

  it('reconnects a lost LISTEN connection and sends subscribers what they missed', async () => {
    const { key, tenantId } = await suite.t.newTenantKey();
    const id = await insertIdleUpload(suite.t, tenantId);
    const stream = await openSse(suite.api.url, `/uploads/${id}/events`, { key });
    const feed = await openSse(suite.api.url, '/events', { key });
    await stream.waitFor((e) => e.event === 'status');

    // A change with no NOTIFY stands for one sent while the connection was down.
    await suite.t.pool.query(
      `UPDATE uploads SET status = 'processing', attempt = 1, bytes_processed = 40, rows_processed = 7, updated_at = now() WHERE id = $1`,
      [id],
    );
    await suite.t.pool.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                         WHERE datname = current_database() AND application_name = 'stream-api:live'`);

    const caughtUp = await stream.waitFor((e) => e.event === 'status' && e.data.status === 'processing', 10_000);
    expect(caughtUp.data).toMatchObject({ attempt: 1, rowsProcessed: 7 });
    await stream.waitFor((e) => e.event === 'progress' && e.data.rowsProcessed === 7, 10_000);
    const fed = await feed.waitFor((e) => e.data.uploadId === id, 10_000);
    expect(fed.data).toMatchObject({ status: 'processing', rowsProcessed: 7, progress: 0.4 });
    expect((await connectionsToTestDb()).live).toBe(1);

    // And NOTIFY flows again on the new connection.
    await suite.t.pool.query(`UPDATE uploads SET status = 'completed', completed_at = now() WHERE id = $1`, [id]);
    await notifyUpload(suite.t.pool, id);
    await stream.ended;
    expect(stream.events.at(-1)).toMatchObject({ event: 'done', data: { status: 'completed' } });
    feed.close();
    await expect.poll(() => suite.api.app.liveHub.subscriberCount).toBe(0);
  });

  it('ends open streams when the app closes, instead of waiting for them', async () => {
    const other = await startApi(suite.t);
    const { key, tenantId } = await suite.t.newTenantKey();
    const id = await insertIdleUpload(suite.t, tenantId);
    const streams = [
      await openSse(other.url, `/uploads/${id}/events`, { key }),
      await openSse(other.url, '/events', { key }),
    ];
    await streams[0]!.waitFor((e) => e.event === 'status');
    const started = Date.now();
    await other.close();
    expect(Date.now() - started).toBeLessThan(2000);
    await Promise.all(streams.map((s) => s.ended));
    expect(other.app.liveHub.subscriberCount).toBe(0);
  });
});
