// Every registered route is documented in /openapi.json, and /docs serves Swagger UI.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestEnv, startApi, type TestEnv } from '../helpers/env.ts';
import { request } from '../helpers/http.ts';

let t: TestEnv;
let api: Awaited<ReturnType<typeof startApi>>;
const routes: { method: string; url: string }[] = [];

beforeAll(async () => {
  t = await createTestEnv();
  api = await startApi(t, (app) => app.addHook('onRoute', (r) => {
    for (const method of [r.method].flat()) routes.push({ method, url: r.url });
  }));
});
afterAll(async () => {
  await api?.close();
  await t?.close();
});

/** Fastify's `/uploads/:id` → OpenAPI's `/uploads/{id}`. */
const toOpenApiPath = (url: string) => url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
const UNDOCUMENTED = (url: string) => url === '/openapi.json' || url.startsWith('/docs') || url.includes('*');

describe('OpenAPI', () => {
  it('documents every registered route, with a summary and responses', async () => {
    const res = await request(api.url, null, 'GET', '/openapi.json');
    expect(res.status).toBe(200);
    const paths = res.body.paths as Record<string, Record<string, { summary?: string; responses?: object }>>;
    const documented = routes.filter((r) => r.method !== 'HEAD' && !UNDOCUMENTED(r.url));
    expect(documented.length).toBeGreaterThan(10);
    const missing = documented.filter((r) => !paths[toOpenApiPath(r.url)]?.[r.method.toLowerCase()]);
    expect(missing).toEqual([]);
    for (const r of documented) {
      const op = paths[toOpenApiPath(r.url)]![r.method.toLowerCase()]!;
      expect(op.summary, `${r.method} ${r.url} has a summary`).toBeTruthy();
      expect(Object.keys(op.responses ?? {}).length, `${r.method} ${r.url} has responses`).toBeGreaterThan(0);
    }
  });

  it('serves Swagger UI at /docs without a CDN', async () => {
    const res = await request(api.url, null, 'GET', '/docs/');
    expect(res.status).toBe(200);
    expect(res.text).toContain('swagger');
    expect(res.text).not.toMatch(/https?:\/\/(cdn|unpkg|cdnjs)/);
  });
});
