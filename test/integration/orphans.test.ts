// Stored objects nothing points at, against the real database and bucket: every way one is made
// (a failed delete, an API that died between store and commit, a purge that failed or stopped midway)
// is found by the orphan sweep, while the object of a live upload never is; and a retention purge
// cannot race a retry (driven step by step with gates in the store and the row lock).
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ORPHAN_SWEEP_TASK, sweepOrphans } from '../../src/retention/orphans.ts';
import { purgeExpired, retentionCronItems } from '../../src/retention/purge.ts';
import { markExpiredUploads } from '../../src/retention/retention.repository.ts';
import { ObjectStore } from '../../src/storage/object-store.ts';
import { createTestEnv, startApi, type TestEnv } from '../helpers/env.ts';
import { generateCsv } from '../helpers/generate.ts';
import { request, upload } from '../helpers/http.ts';

let t: TestEnv;
let me: { tenantId: string; key: string };
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  t = await createTestEnv({ RETENTION_DAYS: '7' });
  me = await t.newTenantKey();
});
beforeEach(async () => {
  await t.pool.query('DELETE FROM uploads');
  for (const key of await t.listObjects('')) await t.store.delete(key);
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
afterAll(async () => {
  await t?.close();
});

/** The real store, with deletes that fail for chosen keys and calls that can be held at a gate. */
class FaultyStore extends ObjectStore {
  failDeletes = new Set<string>();
  headGate: Gate | null = null;

  override async delete(key: string): Promise<void> {
    if (this.failDeletes.has(key)) throw new Error('injected: object storage refused the delete');
    return super.delete(key);
  }

  override async head(key: string): Promise<number | null> {
    await this.headGate?.pass();
    return super.head(key);
  }
}

/** A gate: `pass()` waits until `open()`; `reached` resolves when the first caller arrives. */
class Gate {
  private release!: () => void;
  private arrived!: () => void;
  private readonly opened = new Promise<void>((resolve) => (this.release = resolve));
  readonly reached = new Promise<void>((resolve) => (this.arrived = resolve));
  async pass(): Promise<void> {
    this.arrived();
    await this.opened;
  }
  open(): void {
    this.release();
  }
}

function faultyStore(): FaultyStore {
  const store = new FaultyStore({ ...t.config.s3 });
  cleanups.push(async () => store.destroy());
  return store;
}

async function api(store: ObjectStore = t.store) {
  const server = await startApi({ ...t, store });
  cleanups.push(() => server.close());
  return server;
}

type Status = 'uploaded' | 'processing' | 'completed' | 'failed';

/** An upload row last touched `ageDays` ago; its object is stored unless `stored: false`. */
async function uploadRow(status: Status, opts: { ageDays?: number; stored?: boolean; objectDeleted?: boolean } = {}) {
  const id = randomUUID();
  const key = `uploads/${me.tenantId}/${id}.csv`;
  if (opts.stored !== false) await t.store.putStream(key, Readable.from(['a,b\n1,2\n']));
  await t.pool.query(
    `INSERT INTO uploads (id, tenant_id, dataset, filename, size_bytes, sha256, object_key, status, attempt,
                          object_deleted_at, created_at, updated_at)
     VALUES ($1, $2, 'webhook_events', 'x.csv', 8, repeat('0', 64), $3, $4, 1,
             CASE WHEN $5 THEN now() END, now() - make_interval(days => $6), now() - make_interval(days => $6))`,
    [id, me.tenantId, key, status, opts.objectDeleted ?? false, opts.ageDays ?? 0],
  );
  return { id, key };
}

/** An object in the bucket with no row at all (the API died after storing it, before its commit). */
async function strayObject(): Promise<string> {
  const key = `uploads/${me.tenantId}/${randomUUID()}.csv`;
  await t.store.putStream(key, Readable.from(['a,b\n1,2\n']));
  return key;
}

const sweep = (graceMs = 0, pageSize?: number, pool: Pick<TestEnv['pool'], 'query'> = t.pool) =>
  sweepOrphans({ pool, store: t.store, logger: t.logger, graceMs, ...(pageSize ? { pageSize } : {}) });
const purge = (store: Pick<ObjectStore, 'delete'> = t.store) =>
  purgeExpired({ pool: t.pool, store, logger: t.logger, retentionDays: 7 });
const rowExists = async (id: string) => (await t.pool.query('SELECT 1 FROM uploads WHERE id = $1', [id])).rowCount === 1;
const jobsOf = async (id: string) =>
  (await t.pool.query('SELECT id FROM graphile_worker.jobs WHERE key = $1', [`upload:${id}`])).rowCount;

describe('orphan sweep', () => {
  it('DELETE /uploads/:id whose object delete fails → 204, row gone, object left; the sweep removes it', async () => {
    const store = faultyStore();
    const server = await api(store);
    const sent = await upload(server.url, me.key, { file: { content: generateCsv(3) } });
    expect(sent.status).toBe(202);
    const { object_key: key } = (await t.pool.query('SELECT object_key FROM uploads WHERE id = $1', [sent.body.uploadId])).rows[0];
    store.failDeletes.add(key);

    expect((await request(server.url, me.key, 'DELETE', `/uploads/${sent.body.uploadId}`)).status).toBe(204);
    expect(await rowExists(sent.body.uploadId)).toBe(false);
    expect(await t.listObjects('uploads/')).toEqual([key]);

    expect(await sweep()).toEqual({ listed: 1, orphans: 1, deleted: 1, failures: 0 });
    expect(await t.listObjects('uploads/')).toEqual([]);
  });

  it('an object with no row is kept within the grace period (an upload in flight) and removed after it', async () => {
    const key = await strayObject();
    expect(await sweep(3_600_000)).toEqual({ listed: 1, orphans: 0, deleted: 0, failures: 0 });
    expect(await t.listObjects('uploads/')).toEqual([key]);
    expect(await sweep(0)).toMatchObject({ orphans: 1, deleted: 1 });
    expect(await t.listObjects('uploads/')).toEqual([]);
  });

  it('never removes the object of a live upload; pages through the listing with one reference query per page', async () => {
    const live = [
      await uploadRow('uploaded'),
      await uploadRow('processing'),
      await uploadRow('failed', { ageDays: 30 }), // kept for a retry
      await uploadRow('completed'), // its delete after the load failed: retention deletes it with the row
    ];
    const strays = [await strayObject(), await strayObject(), await strayObject(), await strayObject(), await strayObject()];
    // Outside the uploads/ prefix: not the sweep's to judge.
    await t.store.putStream('elsewhere/keep.txt', Readable.from(['x']));

    let queries = 0;
    const counting = { query: ((...args: Parameters<TestEnv['pool']['query']>) => (queries++, t.pool.query(...args))) as TestEnv['pool']['query'] };
    expect(await sweep(0, 2, counting)).toEqual({ listed: 9, orphans: 5, deleted: 5, failures: 0 });
    expect(queries).toBe(5); // 9 objects in pages of 2

    const left = await t.listObjects('');
    expect(left.sort()).toEqual([...live.map((u) => u.key), 'elsewhere/keep.txt'].sort());
    for (const key of strays) expect(left).not.toContain(key);
  });

  it('a purge whose object delete fails purges the row and leaves the object to the sweep', async () => {
    const stuck = await uploadRow('failed', { ageDays: 10 });
    const gone = await uploadRow('failed', { ageDays: 10 });
    const store = faultyStore();
    store.failDeletes.add(stuck.key);
    expect(await purge(store)).toMatchObject({ uploads: 2, objects: 1, objectFailures: 1 });
    expect(await rowExists(stuck.id)).toBe(false);
    expect(await t.listObjects('uploads/')).toEqual([stuck.key]);
    expect(await sweep()).toMatchObject({ orphans: 1, deleted: 1 });
    expect(await t.listObjects('uploads/')).toEqual([]);
    expect(gone.id).not.toBe(stuck.id);
  });

  it('a purge that stopped after marking: retry refused, the next run deletes the row, the sweep the object', async () => {
    const server = await api();
    const expired = await uploadRow('failed', { ageDays: 10 });
    expect(await markExpiredUploads(t.pool, 7, 10)).toEqual([{ id: expired.id, object_key: expired.key, had_object: true }]);
    // … and the purge died here.
    const retried = await request(server.url, me.key, 'POST', `/uploads/${expired.id}/retry`);
    expect([retried.status, retried.body.error?.code]).toEqual([410, 'object_gone']);
    expect(await jobsOf(expired.id)).toBe(0);

    expect(await purge()).toMatchObject({ uploads: 1, objects: 0, objectFailures: 0 });
    expect(await t.listObjects('uploads/')).toEqual([expired.key]);
    expect(await sweep()).toMatchObject({ orphans: 1, deleted: 1 });
    expect(await t.listObjects('uploads/')).toEqual([]);
  });

  it('is scheduled by cron next to the purge', () => {
    expect(retentionCronItems().map((item) => item.identifier)).toContain(ORPHAN_SWEEP_TASK);
  });
});

describe('purge against retry', () => {
  it('the purge has marked the upload and is deleting its object → the retry is refused with 410, nothing enqueued', async () => {
    const server = await api();
    const expired = await uploadRow('failed', { ageDays: 10 });
    const gate = new Gate();
    cleanups.push(async () => gate.open()); // never leave the purge parked if an expectation fails
    const purging = purge({
      delete: async (key) => {
        await gate.pass();
        await t.store.delete(key);
      },
    });
    await gate.reached; // the purge is about to delete the object

    const retried = await request(server.url, me.key, 'POST', `/uploads/${expired.id}/retry`);
    expect([retried.status, retried.body.error?.code]).toEqual([410, 'object_gone']);
    expect(await jobsOf(expired.id)).toBe(0);

    gate.open();
    expect(await purging).toMatchObject({ uploads: 1, objects: 1 });
    expect(await rowExists(expired.id)).toBe(false);
    expect(await t.listObjects('uploads/')).toEqual([]);
  });

  it('the retry holds the row when the purge runs → the purge skips it; the retry is accepted with its object', async () => {
    const store = faultyStore();
    const server = await api(store);
    const expired = await uploadRow('failed', { ageDays: 10 });
    const gate = (store.headGate = new Gate());
    cleanups.push(async () => gate.open()); // never leave the request parked if an expectation fails
    const retrying = request(server.url, me.key, 'POST', `/uploads/${expired.id}/retry`);
    await gate.reached; // the retry is checking the object

    expect(await purge()).toMatchObject({ uploads: 0, objects: 0 });
    gate.open();
    const retried = await retrying;
    expect(retried.status).toBe(202);
    expect(retried.body).toMatchObject({ status: 'uploaded' });
    expect(await jobsOf(expired.id)).toBe(1);
    expect(await t.listObjects('uploads/')).toEqual([expired.key]);
    // Accepted, the upload is no longer expired: later runs leave it alone too.
    expect(await purge()).toMatchObject({ uploads: 0, objects: 0 });
    expect(await sweep()).toMatchObject({ orphans: 0 });
    expect(await t.listObjects('uploads/')).toEqual([expired.key]);
  });
});
