// A live stream lasts only as long as the access that opened it. Revoking a key ends the streams it
// opened — directly or through a ?token= it minted — within one heartbeat; a token's streams end at
// its expiry; a deleted upload's streams end. Every such end says why (SSE: a last `error` event;
// WebSocket: close 4401/4404 with the code as reason) and is counted.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EndReason } from '../../src/live/access.ts';
import { liveStreamsEnded } from '../../src/live/stream-ends.ts';
import { createApiKey, revokeApiKey } from '../../src/tenants/tenants.repository.ts';
import { createTestEnv, type TestEnv } from '../helpers/env.ts';
import { request } from '../helpers/http.ts';
import { insertIdleUpload, openSse, openWs, startLiveApi, type SseStream, type WsResult } from '../helpers/live.ts';

const BIN = fileURLToPath(new URL('../../bin/stream-api.mjs', import.meta.url));
const run = promisify(execFile);

const HEARTBEAT_MS = 400;
/** Revocation is noticed on the next heartbeat: one period, plus slack for a loaded machine. */
const ONE_HEARTBEAT_BOUND_MS = HEARTBEAT_MS + 2000;
const SHORT_TOKEN_SECONDS = 2;

let t: TestEnv;
/** a short heartbeat, tokens of the default 5 minutes */
let api: Awaited<ReturnType<typeof startLiveApi>>;
/** 2-second tokens and a heartbeat too long to matter: only the expiry itself can end a stream */
let shortTokens: Awaited<ReturnType<typeof startLiveApi>>;

beforeAll(async () => {
  t = await createTestEnv();
  api = await startLiveApi(t, { heartbeatMs: HEARTBEAT_MS });
  shortTokens = await startLiveApi(t, { heartbeatMs: 60_000, accessTokenTtlSeconds: SHORT_TOKEN_SECONDS });
});
afterAll(async () => {
  await api?.close();
  await shortTokens?.close();
  await t?.close();
});

interface Streams {
  sse: SseStream;
  ws: WsResult;
  feed: SseStream;
}

/** An upload's SSE and WebSocket streams and the tenant feed, opened with a key or a ?token=. */
async function openAll(url: string, uploadId: string, auth: { key: string } | { token: string }): Promise<Streams> {
  const key = 'key' in auth ? auth.key : null;
  const query = 'token' in auth ? `?token=${encodeURIComponent(auth.token)}` : '';
  const sse = await openSse(url, `/uploads/${uploadId}/events${query}`, { key });
  const ws = await openWs(url, `/uploads/${uploadId}/ws${query}`, key);
  const feed = await openSse(url, `/events${query}`, { key });
  expect([sse.status, ws.rejected?.status ?? 101, feed.status]).toEqual([200, 101, 200]);
  await sse.waitFor((e) => e.event === 'status');
  await expect.poll(() => ws.messages.length).toBe(1);
  return { sse, ws, feed };
}

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: still open after ${ms} ms`)), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Waits for every stream to end and checks each said `code`; returns when each ended (ms). */
async function expectEnded(streams: Streams, code: string, withinMs: number): Promise<number[]> {
  const wsClosedAt = streams.ws.closed.then((c) => ({ ...c, at: Date.now() }));
  const [, closed] = await Promise.all([
    within(streams.sse.ended, withinMs, 'upload SSE'),
    within(wsClosedAt, withinMs, 'WebSocket'),
    within(streams.feed.ended, withinMs, 'feed SSE'),
  ]);
  for (const sse of [streams.sse, streams.feed]) {
    expect(sse.events.at(-1)).toMatchObject({ event: 'error', data: { error: { code, message: expect.any(String) } } });
  }
  expect(streams.ws.messages.at(-1)).toMatchObject({ event: 'error', data: { error: { code } } });
  expect({ code: closed.code, reason: closed.reason }).toEqual({ code: code === 'not_found' ? 4404 : 4401, reason: code });
  return [streams.sse.events.at(-1)!.receivedAt, closed.at, streams.feed.events.at(-1)!.receivedAt];
}

function expectOpen(streams: Streams): void {
  expect(streams.sse.isEnded()).toBe(false);
  expect(streams.feed.isEnded()).toBe(false);
  expect(streams.ws.socket.readyState).toBe(streams.ws.socket.OPEN);
}

async function closeAll(streams: Streams): Promise<void> {
  streams.sse.close();
  streams.feed.close();
  streams.ws.socket.close();
  await streams.ws.closed;
}

async function ended(reason: EndReason): Promise<number> {
  const metric = await liveStreamsEnded.get();
  return metric.values.filter((v) => v.labels.reason === reason).reduce((sum, v) => sum + v.value, 0);
}

async function mint(url: string, key: string): Promise<{ token: string; expiresAt: string }> {
  const res = await request(url, key, 'POST', '/auth/token');
  expect(res.status).toBe(201);
  return res.body;
}

/** Waits until the hub has run `n` more access checks. */
async function checksPass(app: typeof api.app, n: number): Promise<void> {
  const start = app.liveHub.accessChecks.checks;
  await expect.poll(() => app.liveHub.accessChecks.checks, { timeout: 10_000 }).toBeGreaterThanOrEqual(start + n);
}

describe('live streams end when access ends', () => {
  it("streams opened with a key end within one heartbeat of the key's revocation; another key's stay open", async () => {
    const { tenantId, key } = await t.newTenantKey();
    const spareKey = await createApiKey(t.db, tenantId);
    const id = await insertIdleUpload(t, tenantId);
    const doomed = await openAll(api.url, id, { key });
    const kept = await openAll(api.url, id, { key: spareKey });
    const countedBefore = await ended('key_revoked');

    const revokedAt = Date.now();
    expect(await revokeApiKey(t.db, key)).toMatchObject({ prefix: key.slice(0, 11) });
    const endedAt = await expectEnded(doomed, 'key_revoked', ONE_HEARTBEAT_BOUND_MS);
    expect(Math.max(...endedAt) - revokedAt).toBeLessThan(ONE_HEARTBEAT_BOUND_MS);
    expect(await ended('key_revoked')).toBe(countedBefore + 3);

    await checksPass(api.app, 2);
    expectOpen(kept);
    expect(kept.sse.comments).toContain('heartbeat');
    expect((await openSse(api.url, `/uploads/${id}/events`, { key })).status).toBe(401);
    await closeAll(kept);
    await expect.poll(() => api.app.liveHub.subscriberCount).toBe(0);
  });

  it("?token= streams end at the token's expiry — not a heartbeat later", async () => {
    const { tenantId, key } = await t.newTenantKey();
    const id = await insertIdleUpload(t, tenantId);
    const { token, expiresAt } = await mint(shortTokens.url, key);
    const expiresAtMs = Date.parse(expiresAt);
    expect(expiresAtMs - Date.now()).toBeLessThanOrEqual(SHORT_TOKEN_SECONDS * 1000);
    const streams = await openAll(shortTokens.url, id, { token });
    const countedBefore = await ended('token_expired');

    const endedAt = await expectEnded(streams, 'token_expired', SHORT_TOKEN_SECONDS * 1000 + 5000);
    for (const at of endedAt) {
      expect(at).toBeGreaterThanOrEqual(expiresAtMs - 100); // never before (same clock, measured from the database's)
      expect(at - expiresAtMs).toBeLessThan(2000); // the heartbeat is a minute: this was the expiry timer
    }
    expect(await ended('token_expired')).toBe(countedBefore + 3);
    expect((await openSse(shortTokens.url, `/events?token=${encodeURIComponent(token)}`)).status).toBe(401);
    await expect.poll(() => shortTokens.app.liveHub.subscriberCount).toBe(0);
  });

  it('?token= streams end within one heartbeat when the key that minted the token is revoked', async () => {
    const { tenantId, key } = await t.newTenantKey();
    const id = await insertIdleUpload(t, tenantId);
    const streams = await openAll(api.url, id, await mint(api.url, key));
    await checksPass(api.app, 1);
    expectOpen(streams); // a 5-minute token: nothing but the revocation can end these

    const revokedAt = Date.now();
    await revokeApiKey(t.db, key);
    const endedAt = await expectEnded(streams, 'key_revoked', ONE_HEARTBEAT_BOUND_MS);
    expect(Math.max(...endedAt) - revokedAt).toBeLessThan(ONE_HEARTBEAT_BOUND_MS);
  });

  it('a token cut short in the database (expired early, or deleted) ends its streams on the next check', async () => {
    const { tenantId, key } = await t.newTenantKey();
    const id = await insertIdleUpload(t, tenantId);
    const [early, deleted] = [(await mint(api.url, key)).token, (await mint(api.url, key)).token];
    const streams = [await openAll(api.url, id, { token: early }), await openAll(api.url, id, { token: deleted })];
    const byHash = 'WHERE token_hash = sha256($1::bytea)';
    await t.pool.query(`UPDATE access_tokens SET expires_at = now() - interval '1 second' ${byHash}`, [Buffer.from(early)]);
    await t.pool.query(`DELETE FROM access_tokens ${byHash}`, [Buffer.from(deleted)]);
    for (const s of streams) await expectEnded(s, 'token_expired', ONE_HEARTBEAT_BOUND_MS);
  });

  it("an upload's streams end with not_found when the upload is deleted; the feed stays", async () => {
    const { tenantId, key } = await t.newTenantKey();
    const id = await insertIdleUpload(t, tenantId);
    const streams = await openAll(api.url, id, { key });
    expect((await request(api.url, key, 'DELETE', `/uploads/${id}`)).status).toBe(204);

    await within(streams.sse.ended, ONE_HEARTBEAT_BOUND_MS, 'upload SSE');
    expect(streams.sse.events.at(-1)).toMatchObject({ event: 'error', data: { error: { code: 'not_found' } } });
    expect(await within(streams.ws.closed, ONE_HEARTBEAT_BOUND_MS, 'WebSocket')).toEqual({ code: 4404, reason: 'not_found' });
    await checksPass(api.app, 1);
    expect(streams.feed.isEnded()).toBe(false);
    streams.feed.close();
  });

  it('stream-api keys revoke KEY revokes the key, and its open streams end', async () => {
    const { tenantId, key } = await t.newTenantKey('revoke-me');
    const id = await insertIdleUpload(t, tenantId);
    const streams = await openAll(api.url, id, { key });
    const env = { ...process.env, ...t.env };

    const revoked = await run(process.execPath, [BIN, 'keys', 'revoke', key], { env });
    expect(revoked.stdout).toBe('');
    expect(revoked.stderr).toContain(`revoked ${key.slice(0, 11)}… of tenant revoke-me`);
    await expectEnded(streams, 'key_revoked', ONE_HEARTBEAT_BOUND_MS);
    expect((await request(api.url, key, 'GET', '/uploads')).status).toBe(401);

    const again = await run(process.execPath, [BIN, 'keys', 'revoke', key], { env }).catch((err: { code: number; stderr: string }) => err);
    expect(again).toMatchObject({ code: 1, stderr: expect.stringContaining('no unrevoked API key matches') });
  });
});
