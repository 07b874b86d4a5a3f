// The transactional outbox through the real processing path: upload over HTTP → worker → final
// transaction (+ outbox row) → dispatcher → receiver. Loads and notifications cannot affect each other.
import { Transform } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { WorkerHandle } from '../../src/ingest/worker.ts';
import { startDispatcher, type DispatcherHandle } from '../../src/notify/dispatcher.ts';
import { createTestEnv, startApi, type TestEnv } from '../helpers/env.ts';
import { request, upload } from '../helpers/http.ts';
import { finishUpload, waitForDelivery } from '../helpers/outbox.ts';
import { ok, startReceiver, type Receiver } from '../helpers/receiver.ts';
import { startTestWorker, waitForStatus } from '../helpers/worker.ts';
import { generateCsv } from '../helpers/generate.ts';

const generate = (rows: number) => generateCsv(rows).toString();

let t: TestEnv;
let api: Awaited<ReturnType<typeof startApi>>;
let worker: WorkerHandle;
let dispatcher: DispatcherHandle;
let receiver: Receiver;
let key: string;
let tenantId: string;
let failNextRead = false;

beforeAll(async () => {
  // The default 10 s webhook timeout: a hung receiver holds its attempt far longer than a load takes.
  t = await createTestEnv({ WEBHOOK_ALLOWED_CIDRS: '127.0.0.0/8', WEBHOOK_BACKOFF_BASE_MS: '50' });
  api = await startApi(t);
  worker = await startTestWorker(t, {
    // Fails the S3 read of one load after its first chunk went into COPY: that transaction rolls back.
    wrapSource: (body) => {
      if (!failNextRead) return body;
      failNextRead = false;
      let chunks = 0;
      const failing = new Transform({
        transform(chunk, _e, cb) {
          if (++chunks === 1) return cb(null, chunk);
          body.destroy();
          cb(new Error('injected read failure'));
        },
      });
      return body.pipe(failing);
    },
  });
  dispatcher = await startDispatcher({ pool: t.pool, config: t.config, logger: t.logger, databaseUrl: t.databaseUrl });
  receiver = await startReceiver();
  ({ key, tenantId } = await t.newTenantKey());
});
afterEach(() => {
  receiver.handler = ok;
  receiver.requests = [];
});
afterAll(async () => {
  await receiver?.close(); // first: it cuts the hung attempt short, so stop() need not wait it out
  await dispatcher?.stop();
  await worker?.stop();
  await api?.close();
  await t?.close();
});

async function send(csv: string, fields: Record<string, string> = {}): Promise<string> {
  const res = await upload(api.url, key, { file: { content: csv }, fields });
  expect(res.status).toBe(202);
  return res.body.uploadId as string;
}

async function deliveriesOf(uploadId: string) {
  const { rows } = await t.pool.query(
    'SELECT id, upload_attempt, event, channel, delivery_status, attempts FROM deliveries WHERE upload_id = $1 ORDER BY seq',
    [uploadId],
  );
  return rows;
}

describe('transactional outbox', () => {
  it('a final transaction that rolls back writes no delivery and notifies no one', async () => {
    const { uploadId, deliveryId } = await finishUpload(t.pool, { tenantId, callbackUrl: receiver.url, rollback: true });
    expect(deliveryId).toBeNull();
    await new Promise((r) => setTimeout(r, 500));
    expect(await deliveriesOf(uploadId)).toEqual([]);
    expect(receiver.requests).toEqual([]);
  });

  it('a load that fails mid-COPY and rolls back → no delivery for it; the re-run that commits → exactly one', async () => {
    failNextRead = true;
    const id = await send(generate(20_000), { callbackUrl: receiver.url });
    const state = await waitForStatus(t, id, ['completed', 'failed'], 60_000);
    expect(state).toMatchObject({ status: 'completed', rows_processed: 20_000, attempt: 2 });
    const [req] = await receiver.waitForRequests(1);
    const deliveries = await deliveriesOf(id);
    expect(deliveries).toEqual([
      { id: req!.headers['webhook-id'], upload_attempt: 2, event: 'upload.completed', channel: 'webhook', delivery_status: expect.any(String), attempts: expect.any(Number) },
    ]);
    expect(JSON.parse(req!.body)).toMatchObject({ type: 'upload.completed', uploadId: id, rowsProcessed: 20_000, rowsFailed: 0 });
    await waitForDelivery(t.pool, deliveries[0].id);
    await new Promise((r) => setTimeout(r, 300));
    expect(receiver.requests).toHaveLength(1);
  });

  it('a receiver that hangs never delays a load: the upload completes while its webhook is still in flight', async () => {
    receiver.handler = () => {}; // accepts the POST and never answers
    const started = Date.now();
    const id = await send(generate(5_000), { callbackUrl: receiver.url });
    await waitForStatus(t, id, ['completed', 'failed'], 20_000);
    const loadMs = Date.now() - started;
    await receiver.waitForRequests(1);
    const [delivery] = await deliveriesOf(id);
    // The POST is still open: its attempt is started (counted) and has no outcome yet.
    expect(delivery).toMatchObject({ delivery_status: 'pending', attempts: 1 });
    expect(loadMs).toBeLessThan(8_000); // well inside the 10 s the hung attempt may take

    // The status response carries the latest delivery summary.
    const res = await request(api.url, key, 'GET', `/uploads/${id}`);
    expect(res.body).toMatchObject({ status: 'completed', delivery: { status: 'pending', attempts: 1, lastError: null } });
  });

  it('no callbackUrl → one skipped row (channel none), nothing sent; the status response shows it', async () => {
    const id = await send(generate(100));
    await waitForStatus(t, id, ['completed']);
    expect(await deliveriesOf(id)).toEqual([
      { id: expect.any(String), upload_attempt: 1, event: 'upload.completed', channel: 'none', delivery_status: 'skipped', attempts: 0 },
    ]);
    const res = await request(api.url, key, 'GET', `/upload/${id}/status`);
    expect(res.body.delivery).toEqual({ status: 'skipped', attempts: 0, lastError: null });
    await new Promise((r) => setTimeout(r, 300));
    expect(receiver.requests).toHaveLength(0);
  });
});
