// Endpoint tests' shared setup: a dispatcher on its own pool (stopped by the returned cleanup), an
// endpoint created through the API, and endpoint events written by the real producer and expansion.
import type pg from 'pg';
import { createPool } from '../../src/db/pool.ts';
import { startDispatcher, type DispatcherOptions } from '../../src/notify/dispatcher.ts';
import type { TestApi, TestEnv } from './env.ts';
import { sendJson } from './http.ts';

/** A real dispatcher against the test database; the promise resolves to its stop (dispatcher, then pool). */
export async function runDispatcher(t: TestEnv, opts: DispatcherOptions = {}): Promise<() => Promise<void>> {
  const pool = createPool(t.databaseUrl, 'stream-api:test-dispatcher', 5);
  const handle = await startDispatcher({ pool, config: t.config, logger: t.logger, databaseUrl: t.databaseUrl }, opts);
  return async () => {
    await handle.stop();
    await pool.end();
  };
}

export async function createEndpoint(api: TestApi, key: string, body: Record<string, unknown>): Promise<{ id: string; secret: string }> {
  const res = await sendJson(api.url, key, 'POST', '/endpoints', body);
  if (res.status !== 201) throw new Error(`POST /endpoints → ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body as { id: string; secret: string };
}

export interface EndpointDelivery {
  id: string;
  seq: number;
  event: string;
  upload_id: string | null;
  delivery_status: string;
  attempts: number;
  last_error: string | null;
}

/** The endpoint's deliveries, oldest first. */
export async function deliveriesOf(pool: pg.Pool, endpointId: string): Promise<EndpointDelivery[]> {
  const { rows } = await pool.query<EndpointDelivery>(
    `SELECT id, seq::int, event, upload_id, delivery_status, attempts, last_error FROM deliveries WHERE endpoint_id = $1 ORDER BY seq`,
    [endpointId],
  );
  return rows;
}

export interface AttemptTiming {
  delivery_id: string;
  attempt: number;
  trigger: string;
  started_at: Date;
  finished_at: Date | null;
  error_code: string | null;
  response_status: number | null;
}

/** Every attempt of the endpoint's deliveries, in the order they started. */
export async function attemptsOfEndpoint(pool: pg.Pool, endpointId: string): Promise<AttemptTiming[]> {
  const { rows } = await pool.query<AttemptTiming>(
    `SELECT a.delivery_id, a.attempt, a.trigger, a.started_at, a.finished_at, a.error_code, a.response_status
       FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id
      WHERE d.endpoint_id = $1 ORDER BY a.started_at, a.id`,
    [endpointId],
  );
  return rows;
}
