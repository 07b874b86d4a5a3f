// Many dispatchers, one outbox: disjoint claims, a fenced lease, and crashes. Each delivery reaches
// its receiver once while everyone is healthy, and at least once — same webhook-id — when one dies.
import { once } from 'node:events';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createPool } from '../../src/db/pool.ts';
import { startDispatcher, type DispatcherHandle, type DispatcherOptions } from '../../src/notify/dispatcher.ts';
import { claimDue, recordAttempt } from '../../src/notify/outbox.repository.ts';
import { createTestEnv, type TestEnv } from '../helpers/env.ts';
import { attemptsOf, insertPendingDeliveries, waitForDelivery } from '../helpers/outbox.ts';
import { ok, startReceiver, type Receiver } from '../helpers/receiver.ts';
import { spawnService } from '../helpers/worker.ts';

const WEBHOOK_ENV = {
  WEBHOOK_ALLOWED_CIDRS: '127.0.0.0/8,::1/128',
  WEBHOOK_BACKOFF_BASE_MS: '50',
  WEBHOOK_TIMEOUT_MS: '2000',
};

let t: TestEnv;
let receiver: Receiver;
let tenantId: string;
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  t = await createTestEnv(WEBHOOK_ENV);
  receiver = await startReceiver();
  ({ tenantId } = await t.newTenantKey());
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  receiver.handler = ok;
  receiver.requests = [];
});
afterAll(async () => {
  await receiver?.close();
  await t?.close();
});

/** A dispatcher with its own pool (as a separate process would have) and a log we can count. */
async function dispatcher(opts: DispatcherOptions = {}): Promise<DispatcherHandle & { attempts: () => number }> {
  const pool = createPool(t.databaseUrl, 'stream-api:test-dispatcher', 10);
  const lines: string[] = [];
  const sink = new Writable({ write: (chunk, _enc, done) => (lines.push(String(chunk)), done()) });
  const logger = pino({ level: 'info' }, sink);
  const handle = await startDispatcher({ pool, config: t.config, logger, databaseUrl: t.databaseUrl }, opts);
  cleanups.push(async () => {
    await handle.stop();
    await pool.end();
  });
  return { ...handle, attempts: () => lines.filter((l) => l.includes('"msg":"delivery attempt"')).length };
}

const webhookIds = (requests: Receiver['requests']) => requests.map((r) => String(r.headers['webhook-id']));

describe('several dispatchers on one database', () => {
  it('two dispatchers, 500 deliveries → every webhook-id reaches the receiver exactly once', async () => {
    const a = await dispatcher();
    const b = await dispatcher();
    const ids = await insertPendingDeliveries(t.pool, tenantId, receiver.url, 500);
    await receiver.waitForRequests(500, 30_000);
    for (const id of ids) await waitForDelivery(t.pool, id);
    await new Promise((r) => setTimeout(r, 500)); // room for any duplicate to show up

    const seen = webhookIds(receiver.requests);
    expect(seen).toHaveLength(500);
    expect(new Set(seen)).toEqual(new Set(ids));
    const { rows } = await t.pool.query(
      `SELECT count(*)::int AS attempts, count(DISTINCT delivery_id)::int AS deliveries,
              count(*) FILTER (WHERE response_status = 200)::int AS ok
         FROM delivery_attempts WHERE delivery_id = ANY($1::uuid[])`,
      [ids],
    );
    expect(rows[0]).toEqual({ attempts: 500, deliveries: 500, ok: 500 });
    // Both took part: the claims really were shared, not serialised behind one instance.
    expect(a.attempts()).toBeGreaterThan(0);
    expect(b.attempts()).toBeGreaterThan(0);
    expect(a.attempts() + b.attempts()).toBe(500);
  });

  it('a lapsed lease cannot record: the stale claim is fenced off, the new one records', async () => {
    const [id] = await insertPendingDeliveries(t.pool, tenantId, receiver.url, 1);
    const [stale] = await claimDue(t.pool, 10, 50);
    expect(stale!.id).toBe(id);
    expect(await claimDue(t.pool, 10, 10_000)).toEqual([]); // leased: nobody else may take it
    await new Promise((r) => setTimeout(r, 100));
    const [fresh] = await claimDue(t.pool, 10, 10_000);
    expect(fresh!.id).toBe(id);
    expect(fresh!.lease_token).not.toBe(stale!.lease_token);

    const attempt = {
      number: 1,
      startedAt: new Date(),
      result: { ok: true, statusCode: 200, errorCode: null, errorMessage: null, responseExcerpt: 'ok', durationMs: 3 },
      outcome: { status: 'sent' as const },
    };
    expect(await recordAttempt(t.pool, stale!, attempt)).toBe(false);
    expect(await recordAttempt(t.pool, fresh!, attempt)).toBe(true);
    expect(await recordAttempt(t.pool, fresh!, attempt)).toBe(false); // a token is good for one record
    expect(await attemptsOf(t.pool, id!)).toHaveLength(1);
  });

  it('end to end: a dispatcher whose lease lapses mid-send does not record; the one that took over does', async () => {
    let calls = 0;
    receiver.handler = (_req, res) => (++calls === 1 ? setTimeout(() => res.end('slow ok'), 800) : res.end('ok'));
    await dispatcher({ leaseMs: 200 }); // shorter than its own send: it will lose the row
    const [id] = await insertPendingDeliveries(t.pool, tenantId, receiver.url, 1);
    await receiver.waitForRequests(1);
    await dispatcher();
    await receiver.waitForRequests(2);
    await waitForDelivery(t.pool, id!);
    await new Promise((r) => setTimeout(r, 1000)); // the slow first send has finished by now
    expect(webhookIds(receiver.requests)).toEqual([id, id]);
    const attempts = await attemptsOf(t.pool, id!);
    expect(attempts).toHaveLength(1);
    expect(attempts[0]).toMatchObject({ attempt: 1, response_status: 200 });
  });
});

describe('dispatcher processes', () => {
  it('SIGKILL mid-send → the delivery is sent later by another dispatcher with the same webhook-id', async () => {
    receiver.handler = () => {}; // hold the first request open: the child is mid-send when killed
    const child = spawnService(t, 'dispatcher', WEBHOOK_ENV);
    cleanups.push(async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    const [id] = await insertPendingDeliveries(t.pool, tenantId, receiver.url, 1);
    await receiver.waitForRequests(1, 30_000);
    child.kill('SIGKILL');
    await once(child, 'exit');

    receiver.handler = ok;
    const killedAt = Date.now();
    await dispatcher();
    const [first, second] = await receiver.waitForRequests(2, 15_000);
    expect(second!.headers['webhook-id']).toBe(id);
    expect(first!.headers['webhook-id']).toBe(id);
    // Not before the dead claim's lease lapsed (2000 ms timeout → 4 s lease from the claim).
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(3500);
    expect(second!.at - killedAt).toBeLessThan(6000);
    expect(await waitForDelivery(t.pool, id!)).toMatchObject({ delivery_status: 'sent', attempts: 1 });
  });

  it('SIGTERM → the in-flight attempt finishes and is recorded before the process exits', async () => {
    receiver.handler = (_req, res) => setTimeout(() => res.end('finished'), 700);
    const child = spawnService(t, 'dispatcher', WEBHOOK_ENV);
    cleanups.push(async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    const [id] = await insertPendingDeliveries(t.pool, tenantId, receiver.url, 1);
    await receiver.waitForRequests(1, 30_000);
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const [code] = await exited;
    expect(code).toBe(0);
    const { rows } = await t.pool.query('SELECT delivery_status, attempts FROM deliveries WHERE id = $1', [id]);
    expect(rows[0]).toEqual({ delivery_status: 'sent', attempts: 1 });
    expect((await attemptsOf(t.pool, id!))[0]!.response_excerpt).toBe('finished');
  });
});
