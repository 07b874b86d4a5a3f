// Direct uploads that are never completed: the expiry sweep aborts them in the store and forgets them;
// the orphan sweep leaves their objects alone; part URLs are signed for S3_PUBLIC_ENDPOINT.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { unreferencedKeys } from '../../src/retention/retention.repository.ts';
import { ObjectStore } from '../../src/storage/object-store.ts';
import { expireDirectUploads } from '../../src/uploads/direct-expiry.ts';
import { directClient, objectKeyOf, putParts } from '../helpers/direct.ts';
import { useApi } from '../helpers/env.ts';
import { generateCsv } from '../helpers/generate.ts';
import { waitFor } from '../helpers/wait.ts';
import { startTestWorker } from '../helpers/worker.ts';

const env = useApi();
let me: { tenantId: string; key: string };
beforeAll(async () => {
  me = await env.t.newTenantKey();
});
const { startOk, complete, pending, expectNothingEnqueued } = directClient(env, () => me.key);

describe('S3_PUBLIC_ENDPOINT', () => {
  it('part URLs are signed for the address clients reach the store at, and work only there', async () => {
    const internal = new URL(env.t.config.s3.endpoint!);
    const publicEndpoint = `http://localhost:${internal.port}`;
    const store = new ObjectStore({ ...env.t.config.s3, publicEndpoint });
    try {
      const key = objectKeyOf(me.tenantId, crypto.randomUUID());
      const uploadId = await store.startMultipart(key);
      const url = await store.presignPart(key, uploadId, 1, 600);
      expect(new URL(url).origin).toBe(publicEndpoint);
      const body = new Uint8Array(generateCsv(10));
      // The signature covers the host: the same URL sent to another name of the store is refused.
      const elsewhere = await fetch(url.replace(publicEndpoint, internal.origin), { method: 'PUT', body });
      expect(elsewhere.status).toBe(403);
      expect((await fetch(url, { method: 'PUT', body })).status).toBe(200);
      await store.abortMultipart(key, uploadId);
    } finally {
      store.destroy();
    }
  });
});

describe('direct upload expiry', () => {
  let small: Buffer;
  beforeAll(() => {
    small = generateCsv(100);
  });
  afterAll(async () => {
    await env.t.pool.query('DELETE FROM direct_uploads');
  });

  it('the sweep aborts an expired upload in the store and deletes its state; an unexpired one is untouched', async () => {
    const expired = await startOk(small);
    const live = await startOk(small);
    await putParts(expired, small);
    await env.t.pool.query(`UPDATE direct_uploads SET expires_at = now() - interval '1 second' WHERE id = $1`, [expired.uploadId]);

    // Expired but not yet swept: completing is refused, nothing enqueued.
    const late = await complete(expired.uploadId, [{ partNumber: 1, etag: 'x' }]);
    expect([late.status, late.body.error?.code]).toEqual([410, 'direct_upload_expired']);
    await expectNothingEnqueued(expired.uploadId);

    const summary = await expireDirectUploads({ db: env.t.db, store: env.t.store, logger: env.t.logger });
    expect(summary).toEqual({ expired: 1, failures: 0 });
    expect(await pending(expired.uploadId)).toEqual([]);
    expect(await pending(live.uploadId)).toHaveLength(1);
    // The multipart upload is gone from the store: its part URL is refused as S3 refuses it.
    const put = await fetch(expired.parts[0]!.url, { method: 'PUT', body: new Uint8Array(small) });
    expect([put.status, await put.text()]).toEqual([404, expect.stringContaining('NoSuchUpload')]);
    expect((await complete(expired.uploadId, [{ partNumber: 1, etag: 'x' }])).status).toBe(404);
    expect(await env.t.listObjects(objectKeyOf(me.tenantId, expired.uploadId))).toEqual([]);

    // The live one still takes its part and completes.
    expect((await complete(live.uploadId, await putParts(live, small))).status).toBe(202);
  });

  it('the worker runs the sweep as its graphile-worker task (scheduled every 10 minutes by cron)', async () => {
    const started = await startOk(small);
    await env.t.pool.query(`UPDATE direct_uploads SET expires_at = now() WHERE id = $1`, [started.uploadId]);
    const worker = await startTestWorker(env.t);
    try {
      await env.t.pool.query(`SELECT graphile_worker.add_job('expire-direct-uploads')`);
      await waitFor(async () => (await pending(started.uploadId)).length === 0, 20_000, 'the expiry task to run');
    } finally {
      await worker.stop();
    }
    expect((await fetch(started.parts[0]!.url, { method: 'PUT', body: new Uint8Array(small) })).status).toBe(404);
  });

  it('the orphan sweep counts the key of a pending direct upload as referenced', async () => {
    const started = await startOk(small);
    const key = objectKeyOf(me.tenantId, started.uploadId);
    expect(await unreferencedKeys(env.t.pool, [key, 'uploads/nobody/x.csv'])).toEqual(['uploads/nobody/x.csv']);
  });
});
