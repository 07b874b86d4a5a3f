// The endpoints API over real HTTP: create (with its own secret), list (keyset pages), read, change,
// delete; URL validation and the SSRF guard as for callbackUrl; tenant scoping; secret rotation with
// an overlap; GET /event-types with the JSON Schema of each payload.
import { FormatRegistry } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { describe, expect, it } from 'vitest';
import { EVENT_TYPES } from '../../src/notify/event-types.ts';
import { useApi } from '../helpers/env.ts';

// TypeBox checks formats only through its registry.
FormatRegistry.Set('uuid', (v) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(v));
FormatRegistry.Set('date-time', (v) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/.test(v) && !Number.isNaN(Date.parse(v)));

// No allow-list: loopback and private targets are refused, as for a callbackUrl in production.
const env = useApi();

async function call(key: string | null, method: string, path: string, body?: unknown) {
  const res = await fetch(new URL(path, env.api.url), {
    method,
    headers: {
      ...(key ? { authorization: `Bearer ${key}` } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : null };
}

const SECRET = /^whsec_[A-Za-z0-9+/]{43}=$/;

describe('endpoints: CRUD', () => {
  it('create → 201 with a secret and Location; read, change, list, delete', async () => {
    const { key } = await env.t.newTenantKey();
    const created = await call(key, 'POST', '/endpoints', {
      url: 'https://hooks.example.com/in',
      description: 'billing',
      eventTypes: ['upload.completed'],
      rateLimitPerSecond: 20,
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      url: 'https://hooks.example.com/in', description: 'billing', eventTypes: ['upload.completed'],
      channel: 'webhook', enabled: true, rateLimitPerSecond: 20,
    });
    expect(created.body.secret).toMatch(SECRET);
    const id = created.body.id as string;
    expect(created.headers.get('location')).toBe(`/endpoints/${id}`);

    const read = await call(key, 'GET', `/endpoints/${id}`);
    expect(read.status).toBe(200);
    expect(read.body).toEqual({ ...created.body, secret: undefined, createdAt: created.body.createdAt, updatedAt: created.body.updatedAt });
    expect(read.body.secret).toBeUndefined(); // shown at create and at …/secret only

    const changed = await call(key, 'PATCH', `/endpoints/${id}`, { enabled: false, eventTypes: [], channel: 'slack', rateLimitPerSecond: null });
    expect(changed.status).toBe(200);
    expect(changed.body).toMatchObject({ id, url: 'https://hooks.example.com/in', description: 'billing', eventTypes: [], channel: 'slack', enabled: false, rateLimitPerSecond: null });
    expect((await call(key, 'GET', `/endpoints/${id}`)).body).toEqual(changed.body);

    expect((await call(key, 'DELETE', `/endpoints/${id}`)).status).toBe(204);
    expect((await call(key, 'GET', `/endpoints/${id}`)).status).toBe(404);
    expect((await call(key, 'DELETE', `/endpoints/${id}`)).status).toBe(404);
  });

  it('GET /endpoints pages newest first with nextCursor, like the uploads list', async () => {
    const { key } = await env.t.newTenantKey();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await call(key, 'POST', '/endpoints', { url: `https://example.com/hook/${i}` })).body.id);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: Awaited<ReturnType<typeof call>> = await call(key, 'GET', `/endpoints?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.status).toBe(200);
      expect(page.body.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.body.items.map((e: { id: string }) => e.id));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(seen).toEqual(ids.reverse());
    expect((await call(key, 'GET', '/endpoints?limit=0')).status).toBe(400);
    expect((await call(key, 'GET', '/endpoints?cursor=bogus')).status).toBe(400);
  });

  it('refuses bad input with 400 and a stable code: URL rules and SSRF as for callbackUrl, unknown types, bad limits', async () => {
    const { key } = await env.t.newTenantKey();
    const refused = async (body: unknown, code: string) => {
      const res = await call(key, 'POST', '/endpoints', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error.code, JSON.stringify(body)).toBe(code);
      return res.body.error.message as string;
    };
    expect(await refused({ url: 'http://127.0.0.1:8080/hook' }, 'invalid_endpoint_url')).toMatch(/private, loopback or link-local/);
    expect(await refused({ url: 'http://169.254.169.254/latest' }, 'invalid_endpoint_url')).toMatch(/private/);
    expect(await refused({ url: 'http://[::1]/hook' }, 'invalid_endpoint_url')).toMatch(/private/);
    expect(await refused({ url: 'ftp://example.com/x' }, 'invalid_endpoint_url')).toMatch(/http or https/);
    expect(await refused({ url: 'https://user:pw@example.com/x' }, 'invalid_endpoint_url')).toMatch(/user name or password/);
    expect(await refused({ url: 'not a url' }, 'invalid_endpoint_url')).toMatch(/valid absolute URL/);
    await refused({ url: `https://example.com/${'a'.repeat(2100)}` }, 'validation_failed');
    await refused({}, 'validation_failed');
    await refused({ url: 'https://example.com/x', eventTypes: ['upload.exploded'] }, 'validation_failed');
    await refused({ url: 'https://example.com/x', eventTypes: ['upload.failed', 'upload.failed'] }, 'validation_failed');
    await refused({ url: 'https://example.com/x', channel: 'email' }, 'email_not_configured'); // a known channel, but this service has no SMTP_URL
    await refused({ url: 'https://example.com/x', channel: 'fax' }, 'validation_failed');
    await refused({ url: 'https://example.com/x', rateLimitPerSecond: 0 }, 'validation_failed');
    const made = await call(key, 'POST', '/endpoints', { url: 'https://example.com/x' });
    const patched = await call(key, 'PATCH', `/endpoints/${made.body.id}`, { url: 'http://10.0.0.1/x' });
    expect(patched.status).toBe(400);
    expect(patched.body.error.code).toBe('invalid_endpoint_url');
    expect((await call(key, 'GET', `/endpoints/${made.body.id}`)).body.url).toBe('https://example.com/x');
    expect((await call(key, 'GET', '/endpoints')).body.items).toHaveLength(1); // nothing refused was stored
  });

  it('is tenant-scoped: another tenant’s endpoint is a 404 for every route; no key is a 401', async () => {
    const me = await env.t.newTenantKey();
    const other = await env.t.newTenantKey();
    const id = (await call(me.key, 'POST', '/endpoints', { url: 'https://example.com/mine' })).body.id as string;
    for (const [method, path, body] of [
      ['GET', `/endpoints/${id}`],
      ['PATCH', `/endpoints/${id}`, { enabled: false }],
      ['DELETE', `/endpoints/${id}`],
      ['GET', `/endpoints/${id}/secret`],
      ['POST', `/endpoints/${id}/secret/rotate`],
    ] as const) {
      const res = await call(other.key, method, path, body);
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(res.body.error.code).toBe('not_found');
    }
    expect((await call(other.key, 'GET', '/endpoints')).body.items).toEqual([]);
    expect((await call(me.key, 'GET', `/endpoints/${id}`)).body.enabled).toBe(true); // untouched
    expect((await call(me.key, 'GET', '/endpoints/not-a-uuid')).status).toBe(404);
    expect((await call(null, 'GET', '/endpoints')).status).toBe(401);
  });
});

describe('endpoints: secrets', () => {
  it('GET …/secret returns the create response’s secret; rotate gives a new one, the old signing for a 24 h overlap', async () => {
    const { key } = await env.t.newTenantKey();
    const created = await call(key, 'POST', '/endpoints', { url: 'https://example.com/s' });
    const id = created.body.id as string;
    expect(await call(key, 'GET', `/endpoints/${id}/secret`)).toMatchObject({
      status: 200,
      body: { secret: created.body.secret, previousSecretExpiresAt: null },
    });
    const before = Date.now();
    const rotated = await call(key, 'POST', `/endpoints/${id}/secret/rotate`);
    expect(rotated.status).toBe(200);
    expect(rotated.body.secret).toMatch(SECRET);
    expect(rotated.body.secret).not.toBe(created.body.secret);
    const overlapMs = Date.parse(rotated.body.previousSecretExpiresAt) - before;
    expect(overlapMs).toBeGreaterThan(24 * 3600_000 - 60_000);
    expect(overlapMs).toBeLessThan(24 * 3600_000 + 60_000);
    expect((await call(key, 'GET', `/endpoints/${id}/secret`)).body).toEqual(rotated.body);
    // The previous secret is kept for the overlap (the dispatcher signs with both: see endpoints-fanout).
    const { rows } = await env.t.pool.query('SELECT previous_secret FROM endpoints WHERE id = $1', [id]);
    expect(rows[0].previous_secret).toBe(created.body.secret);
  });
});

describe('event types', () => {
  it('GET /event-types lists each type with the JSON Schema of its payload (the schemas the payloads are checked against)', async () => {
    const { key } = await env.t.newTenantKey();
    const res = await call(key, 'GET', '/event-types');
    expect(res.status).toBe(200);
    expect(res.body.items.map((t: { name: string }) => t.name)).toEqual(['upload.processing', 'upload.completed', 'upload.failed', 'upload.rows_removed', 'endpoint.disabled']);
    for (const [i, served] of (res.body.items as { name: string; toCallbackUrl: boolean; schema: unknown }[]).entries()) {
      expect(served.schema).toEqual(JSON.parse(JSON.stringify(EVENT_TYPES[i]!.schema))); // plain JSON Schema, as defined
      expect(served.schema).toMatchObject({ type: 'object', properties: { type: { const: served.name } } });
    }
    expect(res.body.items.map((t: { toCallbackUrl: boolean }) => t.toCallbackUrl)).toEqual([false, true, true, false, false]);
    const schemaOf = (name: string) => EVENT_TYPES.find((t) => t.name === name)!.schema;
    const uploadId = '0b7f2c4e-1111-4a2b-a333-123456789abc';
    const timestamp = '2025-01-01T00:00:00.000Z';
    const completed = { type: 'upload.completed', uploadId, status: 'completed', rowsProcessed: 9, rowsFailed: 1, timestamp };
    expect(Value.Check(schemaOf('upload.completed'), completed)).toBe(true);
    expect(Value.Check(schemaOf('upload.failed'), completed)).toBe(false);
    expect(Value.Check(schemaOf('upload.completed'), { ...completed, rowsProcessed: -1 })).toBe(false);
    expect((await call(null, 'GET', '/event-types')).status).toBe(401);
  });
});
