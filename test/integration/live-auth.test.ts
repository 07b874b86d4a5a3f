// POST /auth/token and ?token= on the live routes (and nowhere else).
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { useApi } from '../helpers/env.ts';
import { request } from '../helpers/http.ts';
import { insertIdleUpload, openSse } from '../helpers/live.ts';

const suite = useApi();

async function mint(key: string): Promise<string> {
  const res = await request(suite.api.url, key, 'POST', '/auth/token');
  expect(res.status).toBe(201);
  return res.body.token;
}

async function streamStatus(pathname: string): Promise<number> {
  const stream = await openSse(suite.api.url, pathname);
  stream.close();
  return stream.status;
}

describe('POST /auth/token', () => {
  it('mints a 5-minute token, stored only as its SHA-256', async () => {
    const { key, tenantId } = await suite.t.newTenantKey();
    const before = Date.now();
    const res = await request(suite.api.url, key, 'POST', '/auth/token');
    expect(res.status).toBe(201);
    expect(Object.keys(res.body).sort()).toEqual(['expiresAt', 'token']);
    expect(res.body.token).toMatch(/^sat_[A-Za-z0-9_-]{43}$/);
    const ttl = Date.parse(res.body.expiresAt) - before;
    expect(ttl).toBeGreaterThan(290_000);
    expect(ttl).toBeLessThan(310_000);

    const { rows } = await suite.t.pool.query('SELECT tenant_id, token_hash FROM access_tokens WHERE tenant_id = $1', [tenantId]);
    expect(rows).toHaveLength(1);
    expect(Buffer.from(rows[0].token_hash).equals(createHash('sha256').update(res.body.token).digest())).toBe(true);
    expect(JSON.stringify(rows)).not.toContain(res.body.token.slice(4));
  });

  it('needs the API key: no key, a wrong key, or a token cannot mint one', async () => {
    const { key } = await suite.t.newTenantKey();
    const token = await mint(key);
    expect((await request(suite.api.url, null, 'POST', '/auth/token')).status).toBe(401);
    expect((await request(suite.api.url, 'sapi_nope', 'POST', '/auth/token')).status).toBe(401);
    expect((await request(suite.api.url, null, 'POST', `/auth/token?token=${token}`)).status).toBe(401);
    expect((await request(suite.api.url, token, 'POST', '/auth/token')).status).toBe(401);
  });

  it('removes expired tokens opportunistically when minting', async () => {
    const { key, tenantId } = await suite.t.newTenantKey();
    await mint(key);
    await suite.t.pool.query(`UPDATE access_tokens SET expires_at = now() - interval '1 second' WHERE tenant_id = $1`, [tenantId]);
    await mint(key);
    const { rows } = await suite.t.pool.query('SELECT expires_at > now() AS live FROM access_tokens WHERE tenant_id = $1', [tenantId]);
    expect(rows).toEqual([{ live: true }]);
  });
});

describe('?token=', () => {
  it('opens the live streams, and only those', async () => {
    const { key, tenantId } = await suite.t.newTenantKey();
    const id = await insertIdleUpload(suite.t, tenantId);
    const token = await mint(key);

    const stream = await openSse(suite.api.url, `/uploads/${id}/events?token=${token}`);
    expect(stream.status).toBe(200);
    const first = await stream.waitFor((e) => e.event === 'status');
    expect(first.data).toMatchObject({ uploadId: id, status: 'uploaded' });
    stream.close();
    expect(await streamStatus(`/events?token=${token}`)).toBe(200);

    for (const [method, pathname] of [
      ['GET', `/uploads/${id}`],
      ['GET', '/uploads'],
      ['DELETE', `/uploads/${id}`],
      ['GET', '/tenant'],
    ] as const) {
      const res = await request(suite.api.url, null, method, `${pathname}?token=${token}`);
      expect(res.status, `${method} ${pathname}`).toBe(401);
    }
    expect(await streamStatus(`/uploads/${id}/events?token=sat_forged`)).toBe(401);
    await expect.poll(() => suite.api.app.liveHub.subscriberCount).toBe(0);
  });

  it("is scoped to its tenant: another tenant's upload is 404", async () => {
    const owner = await suite.t.newTenantKey();
    const other = await suite.t.newTenantKey();
    const id = await insertIdleUpload(suite.t, owner.tenantId);
    const stream = await openSse(suite.api.url, `/uploads/${id}/events?token=${await mint(other.key)}`);
    expect(stream.status).toBe(404);
    expect(stream.body.error.code).toBe('not_found');
  });

  it('stops working when it expires, or when its API key is revoked', async () => {
    const { key, tenantId } = await suite.t.newTenantKey();
    const id = await insertIdleUpload(suite.t, tenantId);
    const expiring = await mint(key);
    const revoked = await mint(key);
    expect(await streamStatus(`/uploads/${id}/events?token=${expiring}`)).toBe(200);

    await suite.t.pool.query(`UPDATE access_tokens SET expires_at = now() - interval '1 millisecond' WHERE token_hash = sha256($1::bytea)`, [
      Buffer.from(expiring),
    ]);
    expect(await streamStatus(`/uploads/${id}/events?token=${expiring}`)).toBe(401);
    expect(await streamStatus(`/events?token=${expiring}`)).toBe(401);

    expect(await streamStatus(`/events?token=${revoked}`)).toBe(200);
    await suite.t.pool.query('UPDATE api_keys SET revoked_at = now() WHERE tenant_id = $1', [tenantId]);
    expect(await streamStatus(`/events?token=${revoked}`)).toBe(401);
  });
});
