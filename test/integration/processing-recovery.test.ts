// Crash recovery (a real worker process SIGKILLed mid-load), backpressure, retry without re-upload.
import { once } from 'node:events';
import { PassThrough, Transform, Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWorker } from '../../src/ingest/worker.ts';
import { ObjectStore } from '../../src/storage/object-store.ts';
import { createTestEnv, startApi, type TestEnv } from '../helpers/env.ts';
import { request, upload } from '../helpers/http.ts';
import { countRows, spawnService, startTestWorker, uploadState, waitForStatus } from '../helpers/worker.ts';
import { generateCsv } from '../helpers/generate.ts';
import { waitFor } from '../helpers/wait.ts';

const generate = (rows: number) => generateCsv(rows);

let t: TestEnv;
let api: Awaited<ReturnType<typeof startApi>>;
let key: string;

beforeAll(async () => {
  t = await createTestEnv({ WORKER_LEASE_SECONDS: '3', JOB_MAX_ATTEMPTS: '3' });
  api = await startApi(t);
  ({ key } = await t.newTenantKey());
});
afterAll(async () => {
  await api?.close();
  await t?.close();
});

async function send(content: Buffer | string): Promise<string> {
  const res = await upload(api.url, key, { file: { content } });
  expect(res.status).toBe(202);
  return res.body.uploadId;
}

describe('recovery', () => {
  it('re-runs the load of a SIGKILLed worker within seconds: exact rows, no duplicates', async () => {
    const rows = 1_000_000;
    const id = await send(generate(rows));
    const first = spawnService(t, 'worker', { WORKER_LEASE_SECONDS: '3' });
    const exited = once(first, 'exit');
    try {
      // Kill it once the load is visibly under way (progress is reported about once a second).
      await waitFor(async () => (await uploadState(t, id)).rows_processed > 0, 60_000);
      const during = await uploadState(t, id);
      expect(during.status).toBe('processing');
      first.kill('SIGKILL');
      await exited;
      expect(await countRows(t, id)).toEqual({ total: 0, distinct: 0 }); // the open transaction died with it
    } finally {
      first.kill('SIGKILL');
    }

    const killedAt = Date.now();
    const second = spawnService(t, 'worker', { WORKER_LEASE_SECONDS: '3' });
    try {
      const state = await waitForStatus(t, id, ['completed', 'failed'], 60_000);
      console.log(`recovered and completed ${((Date.now() - killedAt) / 1000).toFixed(1)} s after the kill`);
      expect(state.status).toBe('completed');
      // 2: the kill's attempt and the re-run (one more if a starved machine cost the re-run its lease
      // too — the row count below is what must never change).
      expect(state.attempt).toBeGreaterThanOrEqual(2);
      expect(state.rows_processed).toBe(rows);
      expect(await countRows(t, id)).toEqual({ total: rows, distinct: rows });
      const status = await request(api.url, key, 'GET', `/uploads/${id}`);
      expect(status.body.attempt).toBe(state.attempt);
    } finally {
      second.kill('SIGTERM');
      await once(second, 'exit');
    }
  }, 150_000);

  it('keeps bytes read from storage minus bytes written to COPY bounded when COPY is slow', async () => {
    const content = generate(300_000); // ~52 MB
    const id = await send(content);
    let read = 0;
    let written = 0;
    let maxGap = 0;
    const worker = await startTestWorker(t, {
      wrapSource: (body) => body.pipe(new PassThrough({ transform: (c, _e, cb) => ((read += c.length), cb(null, c)) })),
      // ~20 MB/s: far slower than the read side can go.
      wrapSink: (sink) => {
        const throttle = new Transform({
          highWaterMark: 1,
          transform(chunk: Buffer, _e, cb) {
            written += chunk.length;
            maxGap = Math.max(maxGap, read - written);
            setTimeout(() => cb(null, chunk), Math.ceil(chunk.length / 20_000));
          },
        });
        return chainWritable(throttle, sink);
      },
    });
    try {
      const state = await waitForStatus(t, id, ['completed', 'failed'], 60_000);
      expect(state.status).toBe('completed');
      console.log(`backpressure: file ${(content.length / 2 ** 20).toFixed(1)} MB, max read−written gap ${(maxGap / 2 ** 20).toFixed(1)} MB`);
      expect(read).toBe(content.length);
      expect(maxGap).toBeGreaterThan(0);
      expect(maxGap).toBeLessThan(32 * 2 ** 20);
    } finally {
      await worker.stop();
    }
  }, 90_000);

  it('retries a failed upload without re-uploading: object kept on failure, deleted on success', async () => {
    const id = await send(generate(1_000));
    // Object storage unreachable for this worker: every attempt fails; the last one marks the upload failed.
    const broken = new ObjectStore({ ...t.config.s3, endpoint: 'http://127.0.0.1:9' });
    await t.pool.query(`SELECT graphile_worker.reschedule_jobs(array_agg(id), max_attempts => 1) FROM graphile_worker.jobs WHERE key = $1`, [`upload:${id}`]);
    const failing = await startWorker({ pool: t.pool, store: broken, logger: t.logger, config: t.config });
    try {
      const failed = await waitForStatus(t, id, ['failed', 'completed'], 30_000);
      expect(failed).toMatchObject({ status: 'failed', error_code: 'processing_failed' });
    } finally {
      await failing.stop();
      broken.destroy();
    }
    const objectKey = (await t.pool.query('SELECT object_key FROM uploads WHERE id = $1', [id])).rows[0].object_key;
    expect(await t.listObjects('uploads/')).toContain(objectKey);

    const retried = await request(api.url, key, 'POST', `/uploads/${id}/retry`);
    expect(retried.status).toBe(202);
    expect(retried.body).toMatchObject({ status: 'uploaded', error: null, rowsProcessed: 0 });
    expect((await request(api.url, key, 'POST', `/upload/${id}/retry`)).status).toBe(409); // not failed any more

    const worker = await startTestWorker(t);
    try {
      const done = await waitForStatus(t, id, ['completed', 'failed'], 30_000);
      expect(done).toMatchObject({ status: 'completed', rows_processed: 1_000, attempt: 2 });
    } finally {
      await worker.stop();
    }
    expect(await t.listObjects('uploads/')).not.toContain(objectKey);

    // A failed upload whose object is gone cannot be retried: 410.
    await t.pool.query(`UPDATE uploads SET status = 'failed' WHERE id = $1`, [id]);
    const gone = await request(api.url, key, 'POST', `/uploads/${id}/retry`);
    expect(gone.status).toBe(410);
    expect(gone.body.error.code).toBe('object_gone');
  }, 90_000);
});

/** A Writable that writes through `head` into `tail`, finishing when `tail` has finished. */
function chainWritable(head: Transform, tail: Writable): Writable {
  head.pipe(tail);
  return new Writable({
    highWaterMark: 1,
    write(chunk, _e, cb) {
      if (head.write(chunk)) cb();
      else head.once('drain', () => cb());
    },
    final(cb) {
      tail.once('finish', () => cb());
      tail.once('error', cb);
      head.end();
    },
    destroy(err, cb) {
      head.destroy(err ?? undefined);
      tail.destroy(err ?? undefined);
      cb(err);
    },
  });
}
