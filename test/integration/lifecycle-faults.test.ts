// Every upload reaches a final state, and nothing is held for ever — faults injected in-process
// into the real worker (two workers on one database, a failing write, a pool that cannot connect,
// a lease that cannot be renewed, a slow COPY end). Real Postgres, real s3rver, real HTTP.
import net from 'node:net';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PermanentFailure } from '../../src/ingest/failures.ts';
import type { WorkerHandle } from '../../src/ingest/worker.ts';
import { ObjectStore } from '../../src/storage/object-store.ts';
import { createTestEnv, startApi, type TestEnv } from '../helpers/env.ts';
import { generateCsv } from '../helpers/generate.ts';
import { upload } from '../helpers/http.ts';
import { sinkGate, slowFinish } from '../helpers/sinks.ts';
import { countRows, startTestWorker, uploadState, waitForStatus } from '../helpers/worker.ts';
import { waitFor } from '../helpers/wait.ts';

const LEASE_SECONDS = 3;

let t: TestEnv;
let api: Awaited<ReturnType<typeof startApi>>;
let key: string;

beforeAll(async () => {
  t = await createTestEnv({ WORKER_LEASE_SECONDS: String(LEASE_SECONDS), JOB_MAX_ATTEMPTS: '3' });
  api = await startApi(t);
  ({ key } = await t.newTenantKey());
});
afterAll(async () => {
  await api?.close();
  await t?.close();
});

async function send(content: Buffer | string, fields: Record<string, string> = {}): Promise<string> {
  const res = await upload(api.url, key, { file: { content }, fields });
  expect(res.status).toBe(202);
  return res.body.uploadId;
}

async function stopAll(workers: (WorkerHandle | undefined)[]): Promise<void> {
  await Promise.all(workers.map((w) => w?.stop()));
}

describe('lifecycle under injected faults', () => {
  it('a stale run cannot delete the job the current run is working on', async () => {
    const rows = 20_000;
    const id = await send(generateCsv(rows));
    // A: its load is held mid-COPY, and whatever ends it surfaces as a permanent failure — the path
    // on which a run records a failure and would otherwise return normally.
    const gateA = sinkGate({ failWith: () => new PermanentFailure('injected_failure', 'the sink of run A failed') });
    const gateB = sinkGate();
    let a: WorkerHandle | undefined;
    let b: WorkerHandle | undefined;
    try {
      a = await startTestWorker(t, { wrapSink: gateA.wrap });
      await gateA.reached;
      // A is presumed dead (as the lease sweep does to a worker whose lease lapsed): its job is released.
      const [jobA] = await t.jobsFor(id);
      await t.pool.query('SELECT graphile_worker.force_unlock_workers($1::text[])', [[jobA!.locked_by]]);
      b = await startTestWorker(t, { wrapSink: gateB.wrap });
      await gateB.reached; // B took the job over: attempt 2 is mid-COPY
      expect(await uploadState(t, id)).toMatchObject({ status: 'processing', attempt: 2 });
      const [jobB] = await t.jobsFor(id);
      expect(jobB).toMatchObject({ id: jobA!.id });
      expect(jobB!.locked_by).not.toBe(jobA!.locked_by);

      // A's run now ends with a failure it tries to record, as attempt 1, which is no longer current.
      gateA.fail(new PermanentFailure('injected_failure', 'the sink of run A failed'));
      await new Promise((r) => setTimeout(r, 3000)); // A's run settles and graphile-worker records its outcome
      expect(await t.jobsFor(id)).toMatchObject([{ id: jobA!.id, locked_by: jobB!.locked_by }]);
      expect(await uploadState(t, id)).toMatchObject({ status: 'processing', attempt: 2 });

      gateB.open();
      const done = await waitForStatus(t, id, ['completed', 'failed'], 60_000);
      expect(done).toMatchObject({ status: 'completed', attempt: 2, rows_processed: rows });
      expect(await countRows(t, id)).toEqual({ total: rows, distinct: rows });
    } finally {
      gateA.open();
      gateB.open();
      await stopAll([a, b]);
    }
  }, 120_000);

  it('ends failed (worker_lost) when the failure write itself throws on the last attempt', async () => {
    const id = await send('foo,bar\n1,2\n'); // missing columns: a permanent failure, recorded at once
    await t.pool.query(`SELECT graphile_worker.reschedule_jobs(array_agg(id), max_attempts => 1) FROM graphile_worker.jobs WHERE key = $1`, [
      `upload:${id}`,
    ]);
    // The outbox event of this upload's failure write throws (only the worker's own, not the sweep's).
    await t.pool.query(`
      CREATE FUNCTION fail_outbox_write() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF (SELECT error_code FROM uploads WHERE id = NEW.upload_id) IS DISTINCT FROM 'worker_lost' THEN
          RAISE EXCEPTION 'injected: the outbox write failed';
        END IF;
        RETURN NEW;
      END $$;
      CREATE TRIGGER fail_outbox_write BEFORE INSERT ON outbox_events FOR EACH ROW
        WHEN (NEW.upload_id = '${id}'::uuid AND NEW.event_type = 'upload.failed') EXECUTE FUNCTION fail_outbox_write();`);
    const worker = await startTestWorker(t);
    try {
      const state = await waitForStatus(t, id, ['completed', 'failed'], 60_000);
      expect(state).toMatchObject({ status: 'failed', error_code: 'worker_lost' });
      expect(state.error).toContain('injected: the outbox write failed');
      const { rows } = await t.pool.query(
        `SELECT event_type FROM outbox_events WHERE upload_id = $1 AND event_type <> 'upload.processing'`,
        [id],
      );
      expect(rows).toEqual([{ event_type: 'upload.failed' }]);
      expect(await t.jobsFor(id)).toEqual([]); // the exhausted job is gone: a retry starts clean
    } finally {
      await worker.stop();
      await t.pool.query('DROP TRIGGER fail_outbox_write ON outbox_events; DROP FUNCTION fail_outbox_write()');
    }
  }, 90_000);

  it('leaves no storage socket open when taking the database connection fails (50 attempts)', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 50; i++) ids.push(await send(generateCsv(50, { seed: i + 1 })));
    await t.pool.query(
      `SELECT graphile_worker.reschedule_jobs(array_agg(id), max_attempts => 1) FROM graphile_worker.jobs WHERE key = ANY($1::text[])`,
      [ids.map((id) => `upload:${id}`)],
    );
    // The task's pool: queries work, connect() — the load's connection — fails.
    const failingPool = {
      query: (...args: Parameters<pg.Pool['query']>) => (t.pool.query as (...a: unknown[]) => unknown)(...args),
      connect: () => Promise.reject(new Error('injected: cannot take a database connection')),
    } as unknown as pg.Pool;
    const store = new ObjectStore({ ...t.config.s3 });
    const s3Port = Number(new URL(t.config.s3.endpoint!).port);
    const worker = await startTestWorker(t, { pool: failingPool, store });
    try {
      await waitFor(
        async () => {
          const { rows } = await t.pool.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM graphile_worker.jobs
              WHERE key = ANY($1::text[]) AND attempts >= 1 AND locked_at IS NULL`,
            [ids.map((id) => `upload:${id}`)],
          );
          return rows[0]!.n === ids.length;
        },
        60_000,
        '50 processing attempts',
      );
      const open = socketsTo(s3Port);
      console.log(`after 50 failed attempts: ${open} sockets open to the object store`);
      expect(open).toBeLessThanOrEqual(2);
      // The next storage call of this store completes (a leaked socket per attempt exhausts its pool).
      const probe = await Promise.race([
        store.head(`uploads/none-${Date.now()}`).then(() => 'answered'),
        new Promise((r) => setTimeout(() => r('hung'), 10_000)),
      ]);
      expect(probe).toBe('answered');
    } finally {
      await worker.stop();
      store.destroy();
    }
  }, 120_000);

  it('stamps the webhook payload with the commit time, not the start of the load transaction', async () => {
    const slow = slowFinish(3000);
    const id = await send(generateCsv(1_000));
    const worker = await startTestWorker(t, { wrapSink: slow.wrap });
    try {
      expect(await waitForStatus(t, id, ['completed', 'failed'], 60_000)).toMatchObject({ status: 'completed' });
      const { rows } = await t.pool.query<{ payload: { timestamp: string }; created_at: Date }>(
        `SELECT payload, created_at FROM outbox_events WHERE upload_id = $1 AND event_type = 'upload.completed'`,
        [id],
      );
      const stampedAt = Date.parse(rows[0]!.payload.timestamp);
      // The event's own time is the commit's too (what the delivery API shows as its deliveries' createdAt).
      expect(Math.abs(rows[0]!.created_at.getTime() - stampedAt)).toBeLessThan(2);
      const copyFinishedAt = slow.finishedAt()!;
      console.log(`webhook timestamp ${stampedAt - copyFinishedAt} ms after COPY finished`);
      // Same machine, same clock; 50 ms for the millisecond rounding of both sides.
      expect(stampedAt).toBeGreaterThanOrEqual(copyFinishedAt - 50);
    } finally {
      await worker.stop();
    }
  }, 60_000);

  it('aborts its own load before its lease lapses when it cannot renew the lease', async () => {
    const rows = 20_000;
    const id = await send(generateCsv(rows));
    const gate = sinkGate();
    const worker = await startTestWorker(t, { wrapSink: gate.wrap });
    try {
      await gate.reached;
      // The load's backend: its transaction is open, and its last statement set the upload id for COPY.
      const { rows: loads } = await t.pool.query(
        `SELECT pid FROM pg_stat_activity
          WHERE datname = current_database() AND xact_start IS NOT NULL AND query LIKE '%set_config(''app.upload_id''%'`,
      );
      expect(loads).toHaveLength(1);
      const pid: number = loads[0].pid;
      const [job] = await t.jobsFor(id);
      // From now on no lease can be renewed (new ones can still be taken).
      await t.pool.query(`
        CREATE FUNCTION refuse_lease_renewal() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'injected: lease renewal refused'; END $$;
        CREATE TRIGGER refuse_lease_renewal BEFORE UPDATE ON worker_leases FOR EACH ROW EXECUTE FUNCTION refuse_lease_renewal();`);
      const { expires_at: leaseEnd } = (await t.pool.query('SELECT expires_at FROM worker_leases WHERE worker_id = $1', [job!.locked_by])).rows[0];
      // Judged by the database at its own clock (this process also runs the worker, so its own
      // timing is not trusted): 100 ms before the lease lapses, is the load's transaction over?
      const admin = await t.pool.connect();
      try {
        await admin.query(`
          CREATE FUNCTION pg_temp.xact_open_at(p int, at timestamptz) RETURNS boolean LANGUAGE plpgsql AS $$
          BEGIN
            PERFORM pg_sleep(GREATEST(0, extract(epoch FROM at - clock_timestamp())));
            PERFORM pg_stat_clear_snapshot();
            RETURN EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = p AND xact_start IS NOT NULL);
          END $$`);
        const openBefore = (await admin.query('SELECT pg_temp.xact_open_at($1, clock_timestamp()) AS open', [pid])).rows[0].open;
        expect(openBefore).toBe(true); // the held load's transaction is open when renewals start failing
        const { rows: at } = await admin.query(
          `SELECT pg_temp.xact_open_at($1, $2::timestamptz - interval '100 milliseconds') AS open, clock_timestamp() AS checked_at`,
          [pid, leaseEnd],
        );
        console.log(`lease lapses at ${leaseEnd.toISOString()}; load transaction open at ${at[0].checked_at.toISOString()}: ${at[0].open}`);
        expect(at[0].open).toBe(false);
      } finally {
        admin.release();
      }
      await t.pool.query('DROP TRIGGER refuse_lease_renewal ON worker_leases; DROP FUNCTION refuse_lease_renewal()');
      // A fresh identity of the same worker process loads it again, exactly.
      const done = await waitForStatus(t, id, ['completed', 'failed'], 60_000);
      expect(done).toMatchObject({ status: 'completed', rows_processed: rows });
      expect(await countRows(t, id)).toEqual({ total: rows, distinct: rows });
    } finally {
      gate.open();
      await t.pool.query('DROP TRIGGER IF EXISTS refuse_lease_renewal ON worker_leases; DROP FUNCTION IF EXISTS refuse_lease_renewal()');
      await worker.stop();
    }
  }, 90_000);
});

/** Open TCP sockets of this process to `port` (the object store's). */
function socketsTo(port: number): number {
  const handles = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles();
  return handles.filter((h) => h instanceof net.Socket && h.remotePort === port && !h.destroyed).length;
}
