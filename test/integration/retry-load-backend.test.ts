// A retry ends the previous attempt's load backend only when that attempt may still hold it (its worker
// was lost, perhaps frozen mid-COPY). An attempt that ended by itself — completed or failed — gave its
// connection back to the worker's pool: a retry that terminated it would kill a pooled connection, maybe
// in the middle of another upload's COPY, maybe the very one running the retry's claim.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startWorker, type WorkerHandle } from '../../src/ingest/worker.ts';
import { createTestEnv, startApi, type TestEnv } from '../helpers/env.ts';
import { request, upload } from '../helpers/http.ts';
import { captureLogs } from '../helpers/logs.ts';
import { uploadState, waitForStatus } from '../helpers/worker.ts';
import { waitFor } from '../helpers/wait.ts';

let t: TestEnv;
let api: Awaited<ReturnType<typeof startApi>>;
let worker: WorkerHandle;
const logs = captureLogs();

beforeAll(async () => {
  t = await createTestEnv();
  api = await startApi(t);
  worker = await startWorker({ pool: t.pool, store: t.store, logger: logs.logger, config: t.config });
});
afterAll(async () => {
  await worker?.stop();
  await api?.close();
  await t?.close();
});

async function loadBackendOf(id: string): Promise<{ load_backend_pid: number | null; load_backend_start: Date | null }> {
  const { rows } = await t.pool.query('SELECT load_backend_pid, load_backend_start FROM uploads WHERE id = $1', [id]);
  return rows[0];
}

it('an attempt that failed or completed by itself leaves no load backend on record; retrying it twice ends no connection', async () => {
  const { key } = await t.newTenantKey();
  // A file the loader refuses as a whole (no column of the dataset): failed by the attempt itself.
  const res = await upload(api.url, key, { file: { content: 'a,b\n1,2\n' } });
  expect(res.status).toBe(202);
  const id: string = res.body.uploadId;
  for (let attempt = 1; attempt <= 3; attempt++) {
    if (attempt > 1) expect((await request(api.url, key, 'POST', `/uploads/${id}/retry`)).status).toBe(202);
    await waitFor(async () => {
      const s = await uploadState(t, id);
      return s.status === 'failed' && s.attempt === attempt;
    }, 30_000, `attempt ${attempt} to fail`);
    expect(await loadBackendOf(id)).toEqual({ load_backend_pid: null, load_backend_start: null });
  }
  const ok = await upload(api.url, key, { file: { content: 'event_id,event_type,occurred_at\n0b7f2c4e-1111-4a2b-a333-123456789abc,invoice.paid,2025-01-01T00:00:00Z\n' } });
  const done = await waitForStatus(t, ok.body.uploadId, ['completed', 'failed'], 30_000);
  expect(done.status).toBe('completed');
  expect(await loadBackendOf(ok.body.uploadId)).toEqual({ load_backend_pid: null, load_backend_start: null });

  const messages = logs.lines.map((l) => String(l.msg));
  expect(messages.filter((m) => /previous attempt's load backend/.test(m) && !/is gone/.test(m))).toEqual([]);
  expect(logs.lines.filter((l) => Number(l.level) >= 50)).toEqual([]); // nothing at error level
});
