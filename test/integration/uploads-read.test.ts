// Reading, listing, counting and deleting uploads; tenant isolation; JSON 404s.
import { describe, expect, it } from 'vitest';
import { useApi } from '../helpers/env.ts';
import { request, upload } from '../helpers/http.ts';

const suite = useApi();

const CSV = 'event_id,event_type,occurred_at\n0b7f2c4e-1111-4a2b-a333-123456789abc,invoice.paid,2025-01-01T00:00:00Z\n';

async function uploadOne(key: string): Promise<string> {
  const res = await upload(suite.api.url, key, { file: { content: CSV } });
  expect(res.status).toBe(202);
  return res.body.uploadId;
}

describe('reading uploads', () => {
  it('pages through the list newest first with a keyset cursor, and filters by status', async () => {
    const { key } = await suite.t.newTenantKey();
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) ids.push(await uploadOne(key));
    await suite.t.pool.query(`UPDATE uploads SET status = 'failed' WHERE id = ANY($1)`, [[ids[1], ids[4]]]);

    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res = await request(suite.api.url, key, 'GET', `/uploads?limit=3${cursor ? `&cursor=${cursor}` : ''}`);
      expect(res.status).toBe(200);
      seen.push(...res.body.items.map((u: { uploadId: string }) => u.uploadId));
      cursor = res.body.nextCursor;
      pages++;
    } while (cursor);
    expect(pages).toBe(3);
    expect(seen).toEqual([...ids].reverse());

    const failed = await request(suite.api.url, key, 'GET', '/uploads?status=failed');
    expect(failed.body.items.map((u: { uploadId: string }) => u.uploadId)).toEqual([ids[4], ids[1]]);
    expect(failed.body.nextCursor).toBeNull();

    expect((await request(suite.api.url, key, 'GET', '/uploads?status=bogus')).status).toBe(400);
    expect((await request(suite.api.url, key, 'GET', '/uploads?limit=0')).status).toBe(400);
    expect((await request(suite.api.url, key, 'GET', '/uploads?cursor=zzz')).status).toBe(400);

    const stats = await request(suite.api.url, key, 'GET', '/uploads/stats');
    expect(stats.body).toEqual({ uploaded: 5, processing: 0, completed: 0, failed: 2, total: 7 });
  });

  it('keeps tenants apart: another tenant sees 404, an empty list and zero counts', async () => {
    const a = await suite.t.newTenantKey();
    const b = await suite.t.newTenantKey();
    const id = await uploadOne(a.key);

    expect((await request(suite.api.url, a.key, 'GET', `/uploads/${id}`)).status).toBe(200);
    for (const path of [`/uploads/${id}`, `/upload/${id}/status`]) {
      const res = await request(suite.api.url, b.key, 'GET', path);
      expect(res.status).toBe(404);
      expect(res.body.error.code).toBe('not_found');
      expect(res.text).not.toContain(a.tenantId);
    }
    expect((await request(suite.api.url, b.key, 'GET', '/uploads')).body.items).toEqual([]);
    expect((await request(suite.api.url, b.key, 'GET', '/uploads/stats')).body.total).toBe(0);
    expect((await request(suite.api.url, b.key, 'DELETE', `/uploads/${id}`)).status).toBe(404);
    expect((await suite.t.pool.query('SELECT 1 FROM uploads WHERE id = $1', [id])).rowCount).toBe(1);
  });

  it('deletes an upload with its object, but not while it is processing', async () => {
    const { key, tenantId } = await suite.t.newTenantKey();
    const id = await uploadOne(key);
    expect(await suite.t.listObjects(`uploads/${tenantId}/`)).toHaveLength(1);

    await suite.t.pool.query(`UPDATE uploads SET status = 'processing' WHERE id = $1`, [id]);
    const busy = await request(suite.api.url, key, 'DELETE', `/uploads/${id}`);
    expect(busy.status).toBe(409);
    expect(busy.body.error.code).toBe('upload_processing');

    await suite.t.pool.query(`UPDATE uploads SET status = 'completed' WHERE id = $1`, [id]);
    const done = await request(suite.api.url, key, 'DELETE', `/uploads/${id}`);
    expect(done.status).toBe(204);
    expect((await request(suite.api.url, key, 'GET', `/uploads/${id}`)).status).toBe(404);
    expect(await suite.t.listObjects(`uploads/${tenantId}/`)).toEqual([]);
    // its queued job went with it
    expect(await suite.t.jobsFor(id)).toEqual([]);
  });

  it('answers JSON 404s for unknown routes and malformed ids, and 401 without a key', async () => {
    const { key } = await suite.t.newTenantKey();
    for (const path of ['/uploads/not-a-uuid', '/upload/123/status', '/nope']) {
      const res = await request(suite.api.url, key, 'GET', path);
      expect(res.status).toBe(404);
      expect(res.body.error.code).toMatch(/not_found/);
    }
    expect((await request(suite.api.url, key, 'DELETE', '/uploads/xyz')).status).toBe(404);
    const anon = await request(suite.api.url, null, 'GET', '/uploads');
    expect(anon.status).toBe(401);
    expect(anon.body.error.code).toBe('unauthorized');
  });

  it('shows timestamps as ISO-8601 and nulls explicitly', async () => {
    const { key } = await suite.t.newTenantKey();
    const id = await uploadOne(key);
    const res = await request(suite.api.url, key, 'GET', `/uploads/${id}`);
    expect(res.body).toMatchObject({
      uploadId: id,
      status: 'uploaded',
      dataset: 'webhook_events',
      filename: 'data.csv',
      sizeBytes: Buffer.byteLength(CSV),
      rowsProcessed: 0,
      rowsFailed: 0,
      progress: 0,
      error: null,
      callbackUrl: null,
      startedAt: null,
      completedAt: null,
    });
    expect(new Date(res.body.createdAt).toISOString()).toBe(res.body.createdAt);
  });
});
