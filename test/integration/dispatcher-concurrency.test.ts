// Many dispatchers, one outbox: disjoint claims, a fenced lease, and crashes. Each delivery reaches
// its receiver once while everyone is healthy, and at least once — same webhook-id — when one dies;
// every request that left a dispatcher has its attempt row, even when the dispatcher died mid-send.
import { once } from 'node:events';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createPool } from '../../src/db/pool.ts';
import { startDispatcher, type DispatcherHandle, type DispatcherOptions } from '../../src/notify/dispatcher.ts';
import { claimDue, finishAttempt, INTERRUPTED_MESSAGE } from '../../src/notify/outbox.repository.ts';
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

/**
 * A dispatcher with its own pool (as a separate process would have) and a log we can count.
 * `timeoutMs` overrides WEBHOOK_TIMEOUT_MS (and with it the claim lease) for this one instance.
 */
async function dispatcher(
  opts: DispatcherOptions = {},
  timeoutMs = t.config.webhook.timeoutMs,
): Promise<DispatcherHandle & { attempts: () => number }> {
  const pool = createPool(t.databaseUrl, 'stream-api:test-dispatcher', 10);
  const lines: string[] = [];
  const sink = new Writable({ write: (chunk, _enc, done) => (lines.push(String(chunk)), done()) });
  const logger = pino({ level: 'info' }, sink);
  const config = { ...t.config, webhook: { ...t.config.webhook, timeoutMs } };
  const handle = await startDispatcher({ pool, config, logger, databaseUrl: t.databaseUrl }, opts);
  cleanups.push(async () => {
    await handle.stop();
    await pool.end();
  });
  return { ...handle, attempts: () => lines.filter((l) => l.includes('"msg":"delivery attempt"')).length };
}

const webhookIds = (requests: Receiver['requests']) => requests.map((r) => String(r.headers['webhook-id']));

describe('several dispatchers on one database', () => {
  it('two dispatchers, 500 deliveries → every webhook-id reaches the receiver exactly once', async () => {
    // A generous timeout: on a starved machine a receiver in this process can take over 2 s to answer,
    // and a timed-out 200 is sent again by design (at least once). This test is about claims.
    const a = await dispatcher({}, 30_000);
    const b = await dispatcher({}, 30_000);
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

  it('a claim records its attempt as started; a lapsed lease cannot record, its attempt is closed as interrupted by the next claim', async () => {
    const [id] = await insertPendingDeliveries(t.pool, tenantId, receiver.url, 1);
    const [stale] = await claimDue(t.pool, 10, 50, 3, new Date());
    expect(stale).toMatchObject({ id, attempt: 1, interrupted_attempt: null, budget_spent: false });
    expect(await attemptsOf(t.pool, id!)).toEqual([expect.objectContaining({ attempt: 1, finished_at: null, duration_ms: null, error_code: null })]);
    expect(await claimDue(t.pool, 10, 10_000, 3, new Date())).toEqual([]); // leased: nobody else may take it
    await new Promise((r) => setTimeout(r, 100));
    const [fresh] = await claimDue(t.pool, 10, 10_000, 3, new Date());
    expect(fresh).toMatchObject({ id, attempt: 2, interrupted_attempt: 1, budget_spent: false });
    expect(fresh!.lease_token).not.toBe(stale!.lease_token);

    const attempt = (number: number) => ({
      number,
      finishedAt: new Date(),
      result: { ok: true, statusCode: 200, errorCode: null, errorMessage: null, responseExcerpt: 'ok', durationMs: 3 },
      outcome: { status: 'sent' as const },
    });
    expect(await finishAttempt(t.pool, stale!, attempt(1))).toBe(false);
    expect(await finishAttempt(t.pool, fresh!, attempt(2))).toBe(true);
    expect(await finishAttempt(t.pool, fresh!, attempt(2))).toBe(false); // a token is good for one record
    const attempts = await attemptsOf(t.pool, id!);
    expect(attempts).toHaveLength(2);
    expect(attempts[0]).toMatchObject({ attempt: 1, error_code: 'interrupted', error_message: INTERRUPTED_MESSAGE, duration_ms: null, response_status: null });
    expect(attempts[0]!.finished_at).toBeInstanceOf(Date);
    expect(attempts[1]).toMatchObject({ attempt: 2, error_code: null, response_status: 200, duration_ms: 3 });
    const { rows } = await t.pool.query('SELECT delivery_status, attempts FROM deliveries WHERE id = $1', [id]);
    expect(rows[0]).toEqual({ delivery_status: 'sent', attempts: 2 });
  });

  it('an interrupted attempt counts against the retry budget: the last one settles the delivery failed, nothing more is sent', async () => {
    const [id] = await insertPendingDeliveries(t.pool, tenantId, receiver.url, 1);
    // Attempts 1–3 finished with 503 (scheduled retries), attempt 4 started and its dispatcher died.
    await t.pool.query(
      `INSERT INTO delivery_attempts (delivery_id, attempt, started_at, finished_at, duration_ms, response_status, error_code, next_attempt_at)
       SELECT $1, n, now() - interval '1 minute', now() - interval '1 minute', 5, 503, 'http_5xx', now() FROM generate_series(1, 3) n`,
      [id],
    );
    await t.pool.query(`INSERT INTO delivery_attempts (delivery_id, attempt, started_at) VALUES ($1, 4, now() - interval '20 seconds')`, [id]);
    await t.pool.query(`UPDATE deliveries SET attempts = 4, locked_until = now() - interval '1 second', lease_token = gen_random_uuid() WHERE id = $1`, [id]);

    const [claimed] = await claimDue(t.pool, 10, 10_000, 3, new Date());
    expect(claimed).toMatchObject({ id, interrupted_attempt: 4, budget_spent: true });
    const { rows } = await t.pool.query('SELECT delivery_status, attempts, locked_until, lease_token, last_error FROM deliveries WHERE id = $1', [id]);
    expect(rows[0]).toEqual({ delivery_status: 'failed', attempts: 4, locked_until: null, lease_token: null, last_error: `interrupted: ${INTERRUPTED_MESSAGE}` });
    const attempts = await attemptsOf(t.pool, id!);
    expect(attempts).toHaveLength(4); // no attempt 5 was started
    expect(attempts[3]).toMatchObject({ attempt: 4, error_code: 'interrupted', next_attempt_at: null });
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
    // The first request really was sent: its row says so (interrupted: outcome unknown to the record).
    expect(attempts.map((a) => [a.attempt, a.error_code, a.response_status])).toEqual([
      [1, 'interrupted', null],
      [2, null, 200],
    ]);
  });
});

describe('dispatcher processes', () => {
  it('SIGKILL mid-send → attempt 1 stays on record as started; the next dispatcher closes it as interrupted and sends attempt 2, same webhook-id', async () => {
    receiver.handler = () => {}; // hold the first request open: the child is mid-send when killed
    const child = spawnService(t, 'dispatcher', WEBHOOK_ENV);
    cleanups.push(async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    const [id] = await insertPendingDeliveries(t.pool, tenantId, receiver.url, 1);
    await receiver.waitForRequests(1, 30_000);
    child.kill('SIGKILL');
    await once(child, 'exit');

    // The request reached the receiver; its attempt is on record, started, with no outcome.
    const [started] = await attemptsOf(t.pool, id!);
    expect(started).toMatchObject({ attempt: 1, finished_at: null, duration_ms: null, response_status: null, error_code: null });
    expect(await attemptsOf(t.pool, id!)).toHaveLength(1);
    const { rows } = await t.pool.query('SELECT delivery_status, attempts FROM deliveries WHERE id = $1', [id]);
    expect(rows[0]).toEqual({ delivery_status: 'pending', attempts: 1 });

    receiver.handler = ok;
    const killedAt = Date.now();
    await dispatcher();
    const [first, second] = await receiver.waitForRequests(2, 15_000);
    expect(first!.headers['webhook-id']).toBe(id);
    expect(second!.headers['webhook-id']).toBe(id);
    // Not before the dead claim's lease lapsed (2000 ms timeout → 4 s lease from the claim).
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(3500);
    expect(second!.at - killedAt).toBeLessThan(6000);
    expect(await waitForDelivery(t.pool, id!)).toMatchObject({ delivery_status: 'sent', attempts: 2 });
    const attempts = await attemptsOf(t.pool, id!);
    expect(attempts.map((a) => [a.attempt, a.error_code, a.response_status])).toEqual([
      [1, 'interrupted', null],
      [2, null, 200],
    ]);
    expect(attempts[0]!.finished_at).toBeInstanceOf(Date);
    expect(attempts[0]!.error_message).toBe(INTERRUPTED_MESSAGE);
    // Once per attempt: the receiver saw the id twice, and there are two attempt rows.
    expect(webhookIds(receiver.requests)).toEqual([id, id]);
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
