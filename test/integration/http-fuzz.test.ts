// Every client mistake is a 4xx with a stable code, whatever the client sends. Drives every route of
// /openapi.json over real sockets with malformed bodies, headers, content types, ids, query values,
// oversized fields, broken HTTP and cut connections, authenticated or not, and asserts: no 5xx, every
// error in the `{ error: { code, message } }` shape with a code of the error table, no stack or path
// in any body, nothing logged as an error, nothing half-stored; then a normal upload still works.
// Seeded: FUZZ_SEED=<printed seed> reproduces a run (FUZZ_REQUESTS sets its size).
import { randomInt } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorTable } from '../../src/errors.ts';
import { expireDirectUploads } from '../../src/uploads/direct-expiry.ts';
import { startEmbeddedS3, type EmbeddedS3Handle } from '../../src/storage/embedded-s3.ts';
import { createTestEnv, startApi, type TestEnv } from '../helpers/env.ts';
import { type Operation, DIRECT_COMPLETE_PATH, DIRECT_START_PATH, FuzzCases, UPLOAD_PATHS } from '../helpers/fuzz-cases.ts';
import { rawExchange, type RawResponse } from '../helpers/fuzz.ts';
import { request, sendJson, upload } from '../helpers/http.ts';
import { captureLogs, LEVEL } from '../helpers/logs.ts';

const SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : randomInt(2 ** 31);
const REQUESTS = Number(process.env.FUZZ_REQUESTS ?? 2400);
const CONCURRENCY = 16;
const IDLE_MS = 1000;
const CSV = 'event_id,event_type,occurred_at\n0b7f2c4e-1111-4a2b-a333-123456789abc,invoice.paid,2025-01-01T00:00:00Z\n';
/** what a body must never show: a stack frame, a source path, a module path */
const INTERNALS = /\n\s+at |\bat \S+ \(|node_modules|\/src\/|\.(ts|js):\d+|"stack"/;

let s3Dir: string;
let s3: EmbeddedS3Handle;
let t: TestEnv;
let api: Awaited<ReturnType<typeof startApi>>;
const logs = captureLogs();

beforeAll(async () => {
  // A storage server of this file's own: multipart uploads left open are counted on its disk at the end.
  s3Dir = await mkdtemp(path.join(os.tmpdir(), 'stream-api-fuzz-s3-'));
  s3 = await startEmbeddedS3({ dataDir: s3Dir, port: 0, bucket: 'unused' });
  t = await createTestEnv({ S3_ENDPOINT: s3.endpoint, BODY_IDLE_TIMEOUT_MS: String(IDLE_MS), HEADERS_TIMEOUT_MS: '2000' });
  api = await startApi({ ...t, logger: logs.logger });
});
afterAll(async () => {
  await api?.close();
  await t?.close();
  await s3?.stop();
  await rm(s3Dir, { recursive: true, force: true });
});

interface Failure {
  index: number;
  what: string;
  problem: string;
  response?: RawResponse;
}

function judge(response: RawResponse): string | null {
  if (response.status >= 500) return `status ${response.status}`;
  if (INTERNALS.test(response.body)) return 'internal detail in the body';
  if (response.status < 400) return null;
  let body: unknown;
  try {
    body = JSON.parse(response.body);
  } catch {
    return 'error body is not JSON';
  }
  const error = (body as { error?: { code?: unknown; message?: unknown } }).error;
  if (!error || Object.keys(body as object).length !== 1 || Object.keys(error).sort().join() !== 'code,message') {
    return 'error body is not { error: { code, message } }';
  }
  if (typeof error.code !== 'string' || !(error.code in errorTable)) return `code ${String(error.code)} is not in the error table`;
  if (typeof error.message !== 'string') return 'error message is not a string';
  if (errorTable[error.code as keyof typeof errorTable].status !== response.status) return `status ${response.status} ≠ the table's for ${error.code}`;
  return null;
}

async function openMultipartParts(): Promise<number> {
  const all = await readdir(s3.directory, { recursive: true, withFileTypes: true });
  return all.filter((e) => e.isFile() && e.parentPath.includes('._S3rver_uploads')).length;
}

describe('HTTP fuzz', () => {
  it(`${REQUESTS} malformed requests over real sockets: no 5xx, stable error codes, nothing internal, still serving`, async () => {
    console.log(`http fuzz: seed ${SEED} (FUZZ_SEED=${SEED} reproduces), ${REQUESTS} requests`);
    const spec = (await request(api.url, null, 'GET', '/openapi.json')).body as { paths: Record<string, Record<string, Operation>> };
    const operations = Object.entries(spec.paths).flatMap(([p, ops]) => Object.entries(ops).map(([method, op]) => ({ ...op, path: p, method: method.toUpperCase() })));
    expect(operations.length).toBeGreaterThan(20);
    for (const p of [...UPLOAD_PATHS, DIRECT_START_PATH, DIRECT_COMPLETE_PATH]) expect(operations.some((op) => op.path === p && op.method === 'POST')).toBe(true);

    // Real things for the ids to name: uploads of four tenants, a token.
    const tenants = await Promise.all([0, 1, 2, 3].map(() => t.newTenantKey()));
    const uploadIds: string[][] = [];
    for (const tenant of tenants) {
      const ids = [];
      for (let i = 0; i < 2; i++) ids.push((await upload(api.url, tenant.key, { file: { content: CSV } })).body.uploadId as string);
      // and a pending direct upload, so completions reach the part checks and the store
      ids.push((await sendJson(api.url, tenant.key, 'POST', '/uploads/direct', { filename: 'd.csv', size: 6 * 1024 * 1024 })).body.uploadId as string);
      uploadIds.push(ids);
    }
    const token = (await request(api.url, tenants[0]!.key, 'POST', '/auth/token')).body.token as string;
    const cases = new FuzzCases({ seed: SEED, operations, keys: tenants.map((x) => x.key), uploadIds, token, csv: CSV });

    const port = Number(new URL(api.url).port);
    const failures: Failure[] = [];
    const statuses = new Map<number, number>();
    const codes = new Map<string, number>();
    const acceptedUploads = new Set<string>();
    let answered = 0;
    let next = 0;
    const startedAt = Date.now();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        for (let index = next++; index < REQUESTS; index = next++) {
          const c = cases.make(index);
          const { responses } = await rawExchange(port, c.chunks, {
            timeoutMs: c.stall ? 4 * IDLE_MS + 2000 : 8000,
            destroyAfterWrite: c.cut,
            pauseMs: c.pauseMs,
          });
          if (responses.length > 0) answered++;
          else if (!c.cut) failures.push({ index, what: c.what, problem: 'no answer' });
          for (const response of responses) {
            statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
            const problem = judge(response);
            const code = /"code":"([a-z_]+)"/.exec(response.body)?.[1];
            if (code) codes.set(code, (codes.get(code) ?? 0) + 1);
            if (problem) failures.push({ index, what: c.what, problem, response });
            if (response.status === 202 && c.isUpload) {
              const id = (JSON.parse(response.body) as { uploadId?: string }).uploadId;
              if (id) acceptedUploads.add(id);
            }
          }
        }
      }),
    );
    const durationMs = Date.now() - startedAt;
    console.log(
      `http fuzz: seed ${SEED}: direct uploads started ${(await t.pool.query('SELECT count(*)::int AS n FROM direct_uploads')).rows[0].n}; ${REQUESTS} requests (${answered} answered) in ${(durationMs / 1000).toFixed(1)} s; statuses ` +
        [...statuses].sort(([a], [b]) => a - b).map(([s, n]) => `${s}×${n}`).join(' ') +
        `; codes ${[...codes].sort(([, a], [, b]) => b - a).map(([c, n]) => `${c}×${n}`).join(' ')}`,
    );
    expect(failures.slice(0, 10), `seed ${SEED}: ${failures.length} failures`).toEqual([]);
    expect(answered).toBeGreaterThan(REQUESTS * 0.75);
    expect(statuses.get(202) ?? 0, 'some well-formed uploads went through').toBeGreaterThan(0);

    // Every connection the clients left is closed on the server too (none pinned), every stream ended.
    const connections = () => new Promise<number>((resolve) => api.app.server.getConnections((_err, n) => resolve(n)));
    for (const until = Date.now() + 5000; (await connections()) > 0 && Date.now() < until; ) await new Promise((r) => setTimeout(r, 100));
    expect(await connections(), `seed ${SEED}: server connections left open`).toBe(0);
    expect(api.app.liveHub.subscriberCount).toBe(0);

    // Nothing logged as a server error for what clients did.
    const errors = logs.lines.filter((l) => l.level >= LEVEL.error);
    expect(errors.slice(0, 5), `seed ${SEED}`).toEqual([]);

    // Nothing half-written: every upload row is one that was answered 202 (or a fixture), every
    // stored object has its row, no multipart upload is left open in storage.
    await new Promise((r) => setTimeout(r, 500));
    const { rows } = await t.pool.query<{ id: string; object_key: string }>('SELECT id, object_key FROM uploads');
    const known = new Set([...acceptedUploads, ...uploadIds.flat()]);
    expect(rows.filter((r) => !known.has(r.id)).map((r) => r.id)).toEqual([]);
    const rowKeys = new Set(rows.map((r) => r.object_key));
    const objects = await t.store.list('uploads/').next();
    expect((objects.value ?? []).map((o: { key: string }) => o.key).filter((k: string) => !rowKeys.has(k))).toEqual([]);
    // Direct uploads the fuzzer started hold multipart uploads open until they expire: expire them all
    // now and sweep, which must leave none.
    const started = (await t.pool.query(`UPDATE direct_uploads SET expires_at = now() - interval '1 second'`)).rowCount ?? 0;
    expect(await expireDirectUploads({ db: t.db, store: t.store, logger: t.logger })).toEqual({ expired: started, failures: 0 });
    expect(await openMultipartParts()).toBe(0);

    // Still serving: a normal upload of a fresh tenant completes, health answers.
    const fresh = await t.newTenantKey();
    const res = await upload(api.url, fresh.key, { file: { content: CSV } });
    expect(res.status, res.text).toBe(202);
    expect((await t.pool.query('SELECT 1 FROM uploads WHERE id = $1', [res.body.uploadId])).rowCount).toBe(1);
    expect((await request(api.url, null, 'GET', '/healthz')).status).toBe(200);
  }, 180_000);
});
