// Upgrading to events (migration 011) with deliveries in flight: a pending delivery written by the old
// schema is carried over — given its event, already expanded — and the real dispatcher sends it
// once, under its old id; a settled one stays settled and is not sent again.
import { randomBytes } from 'node:crypto';
import { copyFile, mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { migrate, migrationsDir } from '../../src/db/migrate.ts';
import { createDb, createPool } from '../../src/db/pool.ts';
import { startDispatcher } from '../../src/notify/dispatcher.ts';
import { ensureTenant } from '../../src/tenants/tenants.repository.ts';
import { createTestEnv, type TestEnv } from '../helpers/env.ts';
import { adminQuery, withDatabase } from '../helpers/global-setup.ts';
import { waitForDelivery } from '../helpers/outbox.ts';
import { startReceiver, type Receiver } from '../helpers/receiver.ts';

const EVENTS_MIGRATION = '011_events_and_endpoints.sql';

let t: TestEnv; // for its config only
let database: string;
let databaseUrl: string;
let pool: pg.Pool;
let before: string;
let receiver: Receiver;

beforeAll(async () => {
  t = await createTestEnv({ WEBHOOK_ALLOWED_CIDRS: '127.0.0.0/8', WEBHOOK_TIMEOUT_MS: '2000' });
  database = `stream_api_upgrade_${randomBytes(4).toString('hex')}`;
  await adminQuery(inject('adminUrl'), `CREATE DATABASE ${database}`);
  databaseUrl = withDatabase(inject('adminUrl'), database);
  pool = createPool(databaseUrl, 'stream-api:test-upgrade', 4);
  // The schema as it was before events: every migration numbered below 011.
  before = await mkdtemp(path.join(os.tmpdir(), 'stream-api-before-events-'));
  for (const name of await readdir(migrationsDir)) {
    if (/^\d{3}_.*\.sql$/.test(name) && name < EVENTS_MIGRATION) await copyFile(path.join(migrationsDir, name), path.join(before, name));
  }
  receiver = await startReceiver();
});
afterAll(async () => {
  await receiver?.close();
  await pool?.end();
  await adminQuery(inject('adminUrl'), `DROP DATABASE IF EXISTS ${database} WITH (FORCE)`).catch(() => {});
  if (before) await rm(before, { recursive: true, force: true });
  await t?.close();
});

it('a pending delivery of the old schema is sent after the upgrade, once, with its id; a sent one is not re-sent', async () => {
  expect(await migrate(pool, () => {}, before)).not.toContain(EVENTS_MIGRATION);
  const tenant = await ensureTenant(createDb(pool), 'upgrading'); // the pool is ended in afterAll
  // Two finished uploads with their old-style outbox rows: one pending, one already sent.
  const { rows } = await pool.query<{ id: string; delivery_status: string }>(
    `WITH u AS (
       INSERT INTO uploads (id, tenant_id, dataset, filename, size_bytes, sha256, object_key, status, attempt, callback_url)
       SELECT gen_random_uuid(), $1, 'webhook_events', 'old.csv', 1, repeat('0', 64), 'uploads/old-' || g, 'completed', 1, $2
         FROM generate_series(1, 2) g
       RETURNING id, tenant_id, callback_url, object_key)
     INSERT INTO deliveries (tenant_id, upload_id, upload_attempt, event, channel, target, payload, delivery_status)
     SELECT tenant_id, id, 1, 'upload.completed', 'webhook', callback_url,
            jsonb_build_object('type', 'upload.completed', 'uploadId', id, 'status', 'completed',
                               'rowsProcessed', 1, 'rowsFailed', 0, 'timestamp', now()),
            CASE WHEN object_key LIKE '%-1' THEN 'pending' ELSE 'sent' END
       FROM u
     RETURNING id, delivery_status`,
    [tenant.id, receiver.url],
  );
  const pending = rows.find((r) => r.delivery_status === 'pending')!.id;
  const sent = rows.find((r) => r.delivery_status === 'sent')!.id;

  expect(await migrate(pool, () => {}, migrationsDir)).toContain(EVENTS_MIGRATION);
  const { rows: carried } = await pool.query(
    `SELECT d.id, d.event_id, d.target_key, d.delivery_status, e.event_type, e.expanded_at IS NOT NULL AS expanded,
            e.payload = d.payload AS same_payload
       FROM deliveries d JOIN outbox_events e ON e.id = d.event_id ORDER BY d.seq`,
  );
  expect(carried).toEqual([
    { id: pending, event_id: pending, target_key: 'callback', delivery_status: 'pending', event_type: 'upload.completed', expanded: true, same_payload: true },
    { id: sent, event_id: sent, target_key: 'callback', delivery_status: 'sent', event_type: 'upload.completed', expanded: true, same_payload: true },
  ]);

  const dispatcher = await startDispatcher({ pool, config: t.config, logger: t.logger, databaseUrl });
  try {
    expect(await waitForDelivery(pool, pending)).toMatchObject({ delivery_status: 'sent', attempts: 1 });
    await new Promise((r) => setTimeout(r, 1000)); // room for a wrong second send
  } finally {
    await dispatcher.stop();
  }
  expect(receiver.requests.map((r) => r.headers['webhook-id'])).toEqual([pending]);
  const { rows: secret } = await pool.query('SELECT webhook_secret FROM tenants WHERE id = $1', [tenant.id]);
  new Webhook(secret[0].webhook_secret).verify(receiver.requests[0]!.body, receiver.requests[0]!.headers as Record<string, string>);
  const { rows: count } = await pool.query('SELECT count(*)::int AS n FROM deliveries');
  expect(count[0].n).toBe(2); // the expansion the dispatcher ran added nothing
});
