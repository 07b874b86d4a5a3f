// Retention against the real database and bucket: what is older than RETENTION_DAYS and settled goes
// (rows and stored objects); anything in progress stays, however old.
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ORPHAN_SWEEP_TASK, sweepOrphans } from '../../src/retention/orphans.ts';
import { PURGE_TASK, purgeExpired, retentionCronItems } from '../../src/retention/purge.ts';
import { createTestEnv, type TestEnv } from '../helpers/env.ts';
import { spawnService, startTestWorker } from '../helpers/worker.ts';

const HELD_CLOCK = new URL('../helpers/held-clock.mjs', import.meta.url);

let t: TestEnv;
let tenantId: string;

beforeAll(async () => {
  t = await createTestEnv({ RETENTION_DAYS: '7' });
  ({ tenantId } = await t.newTenantKey());
});
beforeEach(async () => {
  await t.pool.query('DELETE FROM outbox_events'); // and, by cascade, their deliveries
  await t.pool.query('DELETE FROM uploads');
  for (const key of await t.listObjects('')) await t.store.delete(key);
});
afterAll(async () => {
  await t?.close();
});

type Status = 'uploaded' | 'processing' | 'completed' | 'failed';

/** An upload last touched `ageDays` ago, with its stored object unless `objectDeleted`. */
async function uploadAged(status: Status, ageDays: number, opts: { objectDeleted?: boolean } = {}) {
  const id = randomUUID();
  const key = `uploads/${tenantId}/${id}.csv`;
  if (!opts.objectDeleted) await t.store.putStream(key, Readable.from(['a,b\n1,2\n']));
  await t.pool.query(
    `INSERT INTO uploads (id, tenant_id, dataset, filename, size_bytes, sha256, object_key, status, attempt,
                          object_deleted_at, created_at, updated_at)
     VALUES ($1, $2, 'webhook_events', 'x.csv', 8, repeat('0', 64), $3, $4, 1,
             CASE WHEN $5 THEN now() END, now() - make_interval(days => $6), now() - make_interval(days => $6))`,
    [id, tenantId, key, status, opts.objectDeleted ?? false, ageDays],
  );
  await t.pool.query(`INSERT INTO upload_errors (upload_id, line, code, message, raw) VALUES ($1, 2, 'bad', 'bad row', '1,2')`, [id]);
  return { id, key };
}

/** A delivery of `uploadId` (and its event) last changed `ageDays` ago, with one attempt that started then. */
async function deliveryAged(uploadId: string | null, status: 'pending' | 'sent' | 'failed', ageDays: number): Promise<string> {
  const { rows } = await t.pool.query(
    `WITH e AS (
       INSERT INTO outbox_events (tenant_id, event_type, upload_id, upload_attempt, payload, created_at, expanded_at)
       VALUES ($1, 'upload.completed', $2, 1, '{}', now() - make_interval(days => $4), now() - make_interval(days => $4))
       RETURNING id)
     INSERT INTO deliveries (event_id, target_key, tenant_id, upload_id, upload_attempt, event, channel, target, payload,
                             delivery_status, attempts, created_at, updated_at)
     SELECT e.id, 'callback', $1, $2, 1, 'upload.completed', 'webhook', 'https://example.com/hook', '{}', $3, 1,
            now() - make_interval(days => $4), now() - make_interval(days => $4)
       FROM e
     RETURNING id`,
    [tenantId, uploadId, status, ageDays],
  );
  const id = rows[0].id as string;
  await t.pool.query(
    `INSERT INTO delivery_attempts (delivery_id, attempt, started_at, duration_ms, response_status)
     VALUES ($1, 1, now() - make_interval(days => $2), 5, 200)`,
    [id, ageDays],
  );
  return id;
}

const exists = async (table: string, column: string, id: string) =>
  (await t.pool.query(`SELECT 1 FROM ${table} WHERE ${column} = $1`, [id])).rowCount === 1;

describe('retention', () => {
  it('purges settled uploads, their rejected rows, objects, deliveries and attempts older than RETENTION_DAYS', async () => {
    const oldCompleted = await uploadAged('completed', 8, { objectDeleted: true });
    const oldFailed = await uploadAged('failed', 8); // failed uploads keep their object for a retry
    const oldProcessing = await uploadAged('processing', 30);
    const oldUploaded = await uploadAged('uploaded', 30);
    const recentFailed = await uploadAged('failed', 6);
    const oldSent = await deliveryAged(oldCompleted.id, 'sent', 8);
    const oldFailedDelivery = await deliveryAged(oldFailed.id, 'failed', 8);
    const oldPending = await deliveryAged(null, 'pending', 8);
    const ofProcessing = await deliveryAged(oldProcessing.id, 'failed', 30); // an earlier attempt's notification
    const recentDelivery = await deliveryAged(recentFailed.id, 'sent', 1);
    // A delivery redelivered recently keeps its row; its attempts from last month are trimmed.
    const redelivered = await deliveryAged(null, 'sent', 1);
    await t.pool.query(
      `INSERT INTO delivery_attempts (delivery_id, attempt, started_at, duration_ms) VALUES ($1, 2, now() - interval '30 days', 1)`,
      [redelivered],
    );

    // Endpoint recoveries: one done 8 days ago goes; one done yesterday and one whose job has not run stay.
    const operation = async (finishedDaysAgo: number | null) =>
      (await t.pool.query(
        `INSERT INTO operations (tenant_id, kind, endpoint_id, since, until, done, queued, finished_at, created_at)
         VALUES ($1, 'endpoint.recover', gen_random_uuid(), now() - interval '40 days', now() - interval '39 days',
                 $2::int IS NOT NULL, 0, now() - make_interval(days => $2::int), now() - interval '39 days')
         RETURNING id`,
        [tenantId, finishedDaysAgo],
      )).rows[0].id as string;
    const oldOperation = await operation(8);
    const keptOperations = [await operation(1), await operation(null)];

    const summary = await purgeExpired({ pool: t.pool, store: t.store, logger: t.logger, retentionDays: 7 });
    expect(summary).toEqual({ uploads: 2, objects: 1, deliveries: 2, attempts: 1, events: 2, operations: 1, objectFailures: 0 });
    expect(await exists('operations', 'id', oldOperation)).toBe(false);
    for (const kept of keptOperations) expect(await exists('operations', 'id', kept)).toBe(true);

    for (const gone of [oldCompleted, oldFailed]) {
      expect(await exists('uploads', 'id', gone.id)).toBe(false);
      expect(await exists('upload_errors', 'upload_id', gone.id)).toBe(false);
    }
    for (const kept of [oldProcessing, oldUploaded, recentFailed]) {
      expect(await exists('uploads', 'id', kept.id)).toBe(true);
      expect(await exists('upload_errors', 'upload_id', kept.id)).toBe(true);
    }
    const objects = await t.listObjects('uploads/');
    expect(objects).not.toContain(oldFailed.key);
    expect(objects).toEqual(expect.arrayContaining([oldProcessing.key, oldUploaded.key, recentFailed.key]));

    for (const gone of [oldSent, oldFailedDelivery]) {
      expect(await exists('deliveries', 'id', gone)).toBe(false);
      expect(await exists('delivery_attempts', 'delivery_id', gone)).toBe(false);
    }
    // (An event is purged only with no delivery left: a kept delivery still has its event.)
    for (const kept of [oldPending, ofProcessing, recentDelivery, redelivered]) expect(await exists('deliveries', 'id', kept)).toBe(true);
    const { rows } = await t.pool.query('SELECT attempt FROM delivery_attempts WHERE delivery_id = $1', [redelivered]);
    expect(rows).toEqual([{ attempt: 1 }]);

    // A second run finds nothing more.
    expect(await purgeExpired({ pool: t.pool, store: t.store, logger: t.logger, retentionDays: 7 })).toEqual({
      uploads: 0, objects: 0, deliveries: 0, attempts: 0, events: 0, operations: 0, objectFailures: 0,
    });
  });

  it('an object that cannot be deleted is left for the orphan sweep, its row purged; batches cover everything', async () => {
    const stuck = await uploadAged('failed', 10);
    const others = await Promise.all(Array.from({ length: 7 }, () => uploadAged('failed', 10)));
    const store = {
      delete: async (key: string) => {
        if (key === stuck.key) throw new Error('injected: storage unavailable');
        await t.store.delete(key);
      },
    };
    const summary = await purgeExpired({ pool: t.pool, store, logger: t.logger, retentionDays: 7, batchSize: 3 });
    expect(summary).toMatchObject({ uploads: 8, objects: 7, objectFailures: 1 });
    for (const u of [stuck, ...others]) expect(await exists('uploads', 'id', u.id)).toBe(false);
    expect(await t.listObjects('uploads/')).toEqual([stuck.key]);
    expect(await sweepOrphans({ pool: t.pool, store: t.store, logger: t.logger, graceMs: 0 })).toMatchObject({ deleted: 1 });
    expect(await t.listObjects('uploads/')).toEqual([]);
  });

  it('runs as graphile-worker tasks, scheduled by cron: the purge and the orphan sweep', async () => {
    expect(retentionCronItems().map((item) => [item.task, item.identifier])).toEqual([
      [PURGE_TASK, PURGE_TASK],
      [ORPHAN_SWEEP_TASK, ORPHAN_SWEEP_TASK],
    ]);
    const old = await uploadAged('failed', 9);
    // No row, but stored just now: an upload in flight, inside ORPHAN_GRACE_HOURS (24 h).
    const inFlight = `uploads/${tenantId}/${randomUUID()}.csv`;
    await t.store.putStream(inFlight, Readable.from(['a,b\n']));
    const worker = await startTestWorker(t);
    try {
      await t.pool.query(`SELECT graphile_worker.add_job($1)`, [PURGE_TASK]);
      await t.pool.query(`SELECT graphile_worker.add_job($1, job_key => 'test-sweep')`, [ORPHAN_SWEEP_TASK]);
      const until = Date.now() + 15_000;
      const sweepQueued = async () => (await t.pool.query(`SELECT 1 FROM graphile_worker.jobs WHERE key = 'test-sweep'`)).rowCount === 1;
      while (((await exists('uploads', 'id', old.id)) || (await sweepQueued())) && Date.now() < until) {
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(await exists('uploads', 'id', old.id)).toBe(false);
      expect(await sweepQueued()).toBe(false); // the sweep ran (a task no worker knows would stay queued)
      const objects = await t.listObjects('uploads/');
      expect(objects).not.toContain(old.key);
      expect(objects).toContain(inFlight);
    } finally {
      await worker.stop();
    }
  });

  it('the worker schedules the purge by graphile-worker cron: at minute 17 it runs, enqueued by nobody', async () => {
    const expired = await uploadAged('completed', 9, { objectDeleted: true });
    // A worker process whose clock stands at 16:59 of the past hour until it is started, then runs:
    // its cron's next minute is 17 (the purge's), and the job the cron adds is due at once (its run_at
    // is that past minute). It stores objects in its own embedded S3 server, which shares its clock.
    const hourMs = 3_600_000;
    const at = Math.floor(Date.now() / hourMs) * hourMs - hourMs + 16 * 60_000 + 59_000;
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'stream-api-cron-'));
    let child: ChildProcess | null = null;
    try {
      child = spawnService(t, 'worker', {
        NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import=${HELD_CLOCK.href}?at=${at}`.trim(),
        S3_ENDPOINT: '',
        DATA_DIR: dataDir,
        EMBEDDED_S3_PORT: '0',
      });
      let output = '';
      child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
      child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
      const until = Date.now() + 30_000;
      while (!output.includes('running; metrics on port')) {
        if (child.exitCode !== null || Date.now() > until) throw new Error(`the worker did not start:\n${output}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(await exists('uploads', 'id', expired.id)).toBe(true); // nothing runs while the clock stands
      child.kill('SIGUSR2');
      while ((await exists('uploads', 'id', expired.id)) && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
      expect(await exists('uploads', 'id', expired.id), output).toBe(false);
    } finally {
      if (child && child.exitCode === null) {
        child.kill('SIGTERM');
        await once(child, 'exit');
      }
      await rm(dataDir, { recursive: true, force: true });
    }
  }, 60_000);
});
