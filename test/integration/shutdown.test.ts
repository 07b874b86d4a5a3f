// Graceful shutdown of the real command: `stream-api serve --role all` gets SIGTERM, stops taking
// work, finishes what it holds (a load, a webhook attempt), closes its connections and exits 0 —
// leaving no worker lease, no locked job and no delivery lease behind.
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTestEnv, type TestEnv } from '../helpers/env.ts';
import { request, upload } from '../helpers/http.ts';
import { generateEvents } from '../helpers/generate.ts';
import { deliveryState, attemptsOf, finishUpload } from '../helpers/outbox.ts';
import { startReceiver, type Receiver } from '../helpers/receiver.ts';
import { countRows, spawnService, uploadState } from '../helpers/worker.ts';
import { waitFor } from '../helpers/wait.ts';

let t: TestEnv;
let receiver: Receiver;
let tmp: string;
const children: ChildProcess[] = [];

beforeAll(async () => {
  t = await createTestEnv({ WEBHOOK_ALLOWED_CIDRS: '127.0.0.0/8' });
  receiver = await startReceiver();
  tmp = await mkdtemp(path.join(os.tmpdir(), 'stream-api-shutdown-'));
});
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});
afterAll(async () => {
  await receiver?.close();
  await t?.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

/** Spawns `serve --role <role>` and resolves once it prints its banner: the API's URL (all, api) and the ops listener's. */
async function serve(role = 'all', env: Record<string, string> = {}) {
  const child = spawnService(t, role, env);
  children.push(child);
  let output = '';
  child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  const banner = /listening on (http:\/\/\S+)\nmetrics and probes: (http:\/\/\S+)\/metrics|running; metrics on port \d+ \((http:\/\/\S+)\/metrics\)/;
  const m = await new Promise<RegExpExecArray>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no banner within 30 s:\n${output}`)), 30_000);
    const look = () => {
      const found = banner.exec(output);
      if (!found) return;
      clearTimeout(timer);
      child.stdout!.off('data', look);
      resolve(found);
    };
    child.stdout!.on('data', look);
    child.once('exit', (code) => reject(new Error(`exited ${code} before its banner:\n${output}`)));
  });
  const url = m[1]?.replace('localhost', '127.0.0.1') ?? null;
  const opsUrl = (m[2] ?? m[3])!;
  return { child, url: url!, opsUrl, output: () => output };
}

async function terminate(child: ChildProcess, withinMs: number): Promise<{ code: number | null; ms: number }> {
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  const started = Date.now();
  child.kill('SIGTERM');
  const timer = new Promise<never>((_, reject) =>
    setTimeout(() => reject(new Error(`still running ${withinMs} ms after SIGTERM`)), withinMs).unref(),
  );
  const [code] = await Promise.race([exited, timer]);
  return { code, ms: Date.now() - started };
}

async function leftovers() {
  const { rows } = await t.pool.query(`SELECT
      (SELECT count(*) FROM worker_leases)::int AS worker_leases,
      (SELECT count(*) FROM graphile_worker.jobs WHERE locked_at IS NOT NULL OR locked_by IS NOT NULL)::int AS locked_jobs,
      (SELECT count(*) FROM deliveries WHERE lease_token IS NOT NULL OR locked_until IS NOT NULL)::int AS leased_deliveries,
      (SELECT count(*) FROM pg_stat_activity
        WHERE datname = current_database() AND application_name LIKE 'stream-api:%'
          AND application_name <> 'stream-api:test')::int AS connections`);
  return rows[0];
}

/** Backends notice a closed connection a moment after the client is gone: allow that moment. */
async function expectNothingLeft(): Promise<void> {
  const none = { worker_leases: 0, locked_jobs: 0, leased_deliveries: 0, connections: 0 };
  const until = Date.now() + 2000;
  let found = await leftovers();
  while (JSON.stringify(found) !== JSON.stringify(none) && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 50));
    found = await leftovers();
  }
  expect(found).toEqual(none);
}

describe('SIGTERM', () => {
  it('an idle `serve --role all` exits 0 within seconds and leaves nothing behind', async () => {
    const { child, url, output } = await serve('all');
    expect((await request(url, null, 'GET', '/readyz')).status).toBe(200);
    // The worker holds a lease while it runs: the assertion below is not vacuous.
    expect((await leftovers()).worker_leases).toBe(1);

    const { code, ms } = await terminate(child, 5_000);
    expect(code).toBe(0);
    expect(output()).toContain('SIGTERM: shutting down');
    console.log(`idle shutdown took ${ms} ms`);
    await expectNothingLeft();
  }, 60_000);

  it.each(['api', 'worker', 'dispatcher'])('`serve --role %s` exits 0 within seconds', async (role) => {
    // Every role is scraped and probed on its ops listener (METRICS_PORT); the API port has no /metrics.
    const { child, url, opsUrl, output } = await serve(role);
    expect((await request(opsUrl, null, 'GET', '/healthz')).status).toBe(200);
    const metrics = await request(opsUrl, null, 'GET', '/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.text).toContain('stream_api_uploads{status="completed"} 0');
    if (role === 'api') expect((await request(url, null, 'GET', '/metrics')).status).toBe(404);

    const { code } = await terminate(child, 5_000);
    expect(code).toBe(0);
    expect(output()).toContain('SIGTERM: shutting down');
    await expectNothingLeft();
  }, 60_000);

  it('mid-load and mid-webhook: finishes both, records them, exits 0, leaves nothing locked', async () => {
    const rows = 1_000_000;
    const file = path.join(tmp, 'events.csv');
    await generateEvents(rows, file);
    const { child, url } = await serve('all');
    const { key, tenantId } = await t.newTenantKey();

    const res = await upload(url, key, { file: { path: file } });
    expect(res.status).toBe(202);
    const uploadId = res.body.uploadId as string;
    await waitFor(async () => (await uploadState(t, uploadId)).rows_processed > 0, 60_000, 'the load to be under way');

    // A webhook attempt in flight: the receiver holds its answer for a while.
    receiver.handler = (_req, res) => setTimeout(() => res.end('ok'), 1500);
    const { deliveryId } = await finishUpload(t.pool, { tenantId, callbackUrl: receiver.url });
    await receiver.waitForRequests(1);

    expect((await uploadState(t, uploadId)).status).toBe('processing');
    const { code, ms } = await terminate(child, 60_000);
    console.log(`shutdown with a load and a webhook in flight took ${ms} ms`);
    expect(code).toBe(0);

    // The load was finished by the same attempt, not abandoned to a re-run.
    const state = await uploadState(t, uploadId);
    expect(state).toMatchObject({ status: 'completed', rows_processed: rows, attempt: 1 });
    expect(await countRows(t, uploadId)).toEqual({ total: rows, distinct: rows });
    // The attempt in flight was completed and recorded.
    expect((await deliveryState(t.pool, deliveryId!)).delivery_status).toBe('sent');
    expect(await attemptsOf(t.pool, deliveryId!)).toHaveLength(1);
    await expectNothingLeft();
  }, 180_000);
});
