// Every upload reaches a final state when real worker processes (`serve --role worker`) are killed
// or frozen: SIGKILL on every attempt until none is left, SIGSTOP in the middle of a COPY.
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestEnv, startApi, type TestEnv } from '../helpers/env.ts';
import { generateCsv } from '../helpers/generate.ts';
import { request, upload } from '../helpers/http.ts';
import { countRows, spawnService, uploadState, waitForStatus } from '../helpers/worker.ts';
import { waitFor } from '../helpers/wait.ts';

// Short, for a quick test, but not 3 s: a worker aborts its own jobs after 3/4 of a lease without a
// renewal, and a 2-core machine loaded by other suites starves a process for over 2 s (seen: an extra attempt).
const LEASE = { WORKER_LEASE_SECONDS: '6' };
const MAX_ATTEMPTS = 2;

let t: TestEnv;
let api: Awaited<ReturnType<typeof startApi>>;
let key: string;
const children: ChildProcess[] = [];

beforeAll(async () => {
  t = await createTestEnv({ ...LEASE, JOB_MAX_ATTEMPTS: String(MAX_ATTEMPTS) });
  api = await startApi(t);
  ({ key } = await t.newTenantKey());
});
afterAll(async () => {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGCONT');
      child.kill('SIGKILL');
    }
  }
  await api?.close();
  await t?.close();
});

function worker(): ChildProcess {
  const child = spawnService(t, 'worker', LEASE);
  children.push(child);
  child.stdout!.resume(); // drained: a full pipe would stall the child
  child.stderr!.resume();
  return child;
}

async function send(content: Buffer): Promise<string> {
  const res = await upload(api.url, key, { file: { content } });
  expect(res.status).toBe(202);
  return res.body.uploadId;
}

async function kill(child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill(signal);
  await exited;
}

/** The process state letter from /proc (T = stopped). */
function procState(pid: number): string {
  return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.charAt(0);
}

describe('worker processes killed or frozen', () => {
  it(`SIGKILL on every attempt: failed (worker_lost) within 60 s, then retry loads every row once`, async () => {
    const rows = 200_000;
    const id = await send(generateCsv(rows));
    let current = worker();
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      await waitFor(
        async () => {
          const s = await uploadState(t, id);
          return s.status === 'processing' && s.attempt === attempt;
        },
        60_000,
        `attempt ${attempt} to start`,
      );
      await new Promise((r) => setTimeout(r, 300)); // into the load
      await kill(current);
      expect(await countRows(t, id)).toEqual({ total: 0, distinct: 0 });
      current = worker(); // the next attempt's worker, and after the last one the worker that notices
    }
    const lastKillAt = Date.now();
    const failed = await waitForStatus(t, id, ['completed', 'failed'], 60_000);
    const seconds = (Date.now() - lastKillAt) / 1000;
    console.log(`failed (worker_lost) ${seconds.toFixed(1)} s after the last attempt's worker was killed`);
    expect(failed).toMatchObject({ status: 'failed', error_code: 'worker_lost', attempt: MAX_ATTEMPTS });
    const { rows: outcomes } = await t.pool.query(
      `SELECT event_type FROM outbox_events WHERE upload_id = $1 AND event_type <> 'upload.processing'`,
      [id],
    );
    expect(outcomes).toEqual([{ event_type: 'upload.failed' }]);

    const retried = await request(api.url, key, 'POST', `/uploads/${id}/retry`);
    expect(retried.status).toBe(202);
    const done = await waitForStatus(t, id, ['completed', 'failed'], 60_000);
    expect(done).toMatchObject({ status: 'completed', rows_processed: rows, attempt: MAX_ATTEMPTS + 1 });
    expect(await countRows(t, id)).toEqual({ total: rows, distinct: rows });
    await kill(current, 'SIGTERM');
  }, 240_000);

  it('SIGSTOP mid-COPY: another worker completes the load within 60 s while the first is frozen; it then commits nothing', async () => {
    const rows = 1_000_000;
    const id = await send(generateCsv(rows));
    const frozen = worker();
    await waitFor(async () => (await uploadState(t, id)).rows_processed > 0, 90_000, 'the load to be under way');
    frozen.kill('SIGSTOP');
    const frozenAt = Date.now();
    const second = worker();
    const done = await waitForStatus(t, id, ['completed', 'failed'], 60_000);
    const seconds = (Date.now() - frozenAt) / 1000;
    console.log(`completed by another worker ${seconds.toFixed(1)} s after the first was frozen`);
    expect(procState(frozen.pid!)).toBe('T'); // still frozen
    expect(done).toMatchObject({ status: 'completed', attempt: 2, rows_processed: rows });
    expect(await countRows(t, id)).toEqual({ total: rows, distinct: rows });

    // Thawed, the first worker finds its attempt taken over: it commits nothing, and it stays up.
    frozen.kill('SIGCONT');
    await new Promise((r) => setTimeout(r, 5000));
    expect(frozen.exitCode).toBeNull();
    expect(await countRows(t, id)).toEqual({ total: rows, distinct: rows });
    expect(await uploadState(t, id)).toMatchObject({ status: 'completed', attempt: 2, rows_processed: rows });
    const { rows: outcomes } = await t.pool.query(
      `SELECT event_type, upload_attempt FROM outbox_events WHERE upload_id = $1 AND event_type <> 'upload.processing'`,
      [id],
    );
    expect(outcomes).toEqual([{ event_type: 'upload.completed', upload_attempt: 2 }]);
    await Promise.all([kill(frozen, 'SIGTERM'), kill(second, 'SIGTERM')]);
  }, 240_000);
});
