// Many processes, one database — the way the service scales out: 2 API, 3 worker and 2 dispatcher
// processes (`serve --role …`) on one PostgreSQL and one bucket; 30 concurrent uploads of mixed sizes
// and outcomes, split over both APIs; one worker SIGKILLed in the middle of a load. Every upload ends,
// every row is loaded exactly once, every outcome is delivered, signed, and received once per attempt.
import { once } from 'node:events';
import type { ChildProcess } from 'node:child_process';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findWebhookSecret } from '../../src/notify/secrets.repository.ts';
import { createTestEnv, type TestEnv } from '../helpers/env.ts';
import { generateCsv } from '../helpers/generate.ts';
import { upload } from '../helpers/http.ts';
import { startReceiver, type Receiver } from '../helpers/receiver.ts';
import { countRows, spawnService } from '../helpers/worker.ts';

let t: TestEnv;
let receiver: Receiver;
const children: ChildProcess[] = [];
const firstTry = new Set<string>();

beforeAll(async () => {
  t = await createTestEnv({
    WORKER_LEASE_SECONDS: '3',
    WORKER_CONCURRENCY: '1',
    WEBHOOK_ALLOWED_CIDRS: '127.0.0.0/8',
    WEBHOOK_BACKOFF_BASE_MS: '200',
    WEBHOOK_BACKOFF_MAX_MS: '1000',
  });
  // Every third notification fails its first attempt (503), so retries cross dispatchers too.
  receiver = await startReceiver('127.0.0.1', (req, res) => {
    const id = String(req.headers['webhook-id']);
    const retryMe = Number.parseInt(id.slice(-2), 16) % 3 === 0 && !firstTry.has(id);
    firstTry.add(id);
    res.statusCode = retryMe ? 503 : 200;
    res.end(retryMe ? 'busy' : 'ok');
  });
});

afterAll(async () => {
  for (const child of children) child.kill('SIGTERM');
  await Promise.all(children.map((c) => (c.exitCode === null && c.signalCode === null ? once(c, 'exit') : null)));
  await receiver?.close();
  await t?.close();
});

function start(role: string): ChildProcess {
  const child = spawnService(t, role);
  child.stderr!.on('data', () => {});
  children.push(child);
  return child;
}

function apiUrl(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk) => {
      out += String(chunk);
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.once('exit', (code) => reject(new Error(`api exited (${code}) before listening: ${out}`)));
  });
}

interface Planned {
  csv: Buffer;
  fields?: Record<string, string>;
  expect: { status: 'completed' | 'failed'; rows?: number; failed?: number; code?: string };
}

/** 30 uploads: small, medium and large clean files, files with bad rows, and files that must fail. */
function plan(): Planned[] {
  const out: Planned[] = [];
  for (let i = 0; i < 12; i++) out.push({ csv: generateCsv(1_000, { seed: i }), expect: { status: 'completed', rows: 1_000 } });
  for (let i = 0; i < 8; i++) out.push({ csv: generateCsv(20_000, { seed: 100 + i }), expect: { status: 'completed', rows: 20_000 } });
  for (let i = 0; i < 3; i++) out.push({ csv: generateCsv(150_000, { seed: 200 + i }), expect: { status: 'completed', rows: 150_000 } });
  for (let i = 0; i < 3; i++) {
    let bad = 0;
    const csv = generateCsv(5_000, { seed: 300 + i, badRatio: 0.02, onBadRow: () => bad++ });
    out.push({ csv, expect: { status: 'completed', rows: 5_000 - bad, failed: bad } });
  }
  out.push({ csv: Buffer.from('event_type,source\ninvoice.paid,stripe\n'), expect: { status: 'failed', code: 'missing_columns' } });
  out.push({ csv: Buffer.concat([generateCsv(500), Buffer.from('x,"never closed\n')]), expect: { status: 'failed', code: 'unterminated_quote' } });
  out.push({ csv: generateCsv(2_000, { badRatio: 0.5 }), fields: { maxErrorRatio: '0.1' }, expect: { status: 'failed', code: 'error_budget_exceeded' } });
  out.push({ csv: Buffer.alloc(0), expect: { status: 'failed', code: 'empty_file' } });
  return out;
}

describe('scale-out: 2 API + 3 worker + 2 dispatcher processes on one database and bucket', () => {
  it('30 concurrent uploads, a worker killed mid-load: each loaded exactly once, each outcome delivered once per attempt', async () => {
    const apis = [start('api'), start('api')];
    const urls = await Promise.all(apis.map(apiUrl));
    const workers = [start('worker'), start('worker'), start('worker')];
    start('dispatcher');
    start('dispatcher');
    const { key, tenantId } = await t.newTenantKey();

    const planned = plan();
    expect(planned).toHaveLength(30);
    const ids = await Promise.all(
      planned.map(async (p, i) => {
        const res = await upload(urls[i % 2]!, key, { file: { content: p.csv }, fields: { callbackUrl: `${receiver.url}?n=${i}`, ...p.fields } });
        expect(res.status, res.text).toBe(202);
        return res.body.uploadId as string;
      }),
    );

    // Kill the first worker while every worker is in the middle of a load (concurrency 1 each).
    const until = Date.now() + 120_000;
    for (;;) {
      const { rows } = await t.pool.query(`SELECT count(*)::int AS n FROM uploads WHERE status = 'processing' AND rows_processed > 0`);
      if (rows[0].n >= 3) break;
      if (Date.now() > until) throw new Error('the workers never got busy');
      await new Promise((r) => setTimeout(r, 100));
    }
    workers[0]!.kill('SIGKILL');

    // Every upload ends.
    const final = async () =>
      (await t.pool.query(`SELECT id, status, error_code, rows_processed, rows_failed, attempt FROM uploads WHERE id = ANY($1::uuid[])`, [ids])).rows;
    const deadline = Date.now() + 240_000;
    let rows = await final();
    while (rows.some((r) => r.status !== 'completed' && r.status !== 'failed')) {
      if (Date.now() > deadline) throw new Error(`not final: ${JSON.stringify(rows.filter((r) => r.status !== 'completed' && r.status !== 'failed'))}`);
      await new Promise((r) => setTimeout(r, 250));
      rows = await final();
    }
    const byId = new Map(rows.map((r) => [r.id as string, r]));
    for (const [i, id] of ids.entries()) {
      const want = planned[i]!.expect;
      const got = byId.get(id)!;
      expect(got.status, `upload ${i}`).toBe(want.status);
      if (want.code) expect(got.error_code, `upload ${i}`).toBe(want.code);
      const loaded = await countRows(t, id);
      expect(loaded.total, `upload ${i}: rows loaded exactly once`).toBe(loaded.distinct);
      expect(loaded.total, `upload ${i}`).toBe(want.status === 'completed' ? want.rows : 0);
      if (want.status === 'completed') expect(got.rows_processed).toBe(want.rows);
      if (want.failed !== undefined) expect(got.rows_failed).toBe(want.failed);
    }
    // The kill hit a load, which a live worker took over and finished.
    expect(rows.some((r) => r.attempt >= 2)).toBe(true);

    // Every outcome is delivered: one delivery per upload, sent; each webhook-id received once per attempt.
    const deadlineSent = Date.now() + 60_000;
    let deliveries: { id: string; upload_id: string; event: string; delivery_status: string; attempts: number }[] = [];
    for (;;) {
      ({ rows: deliveries } = await t.pool.query(
        `SELECT id, upload_id, event, delivery_status, attempts FROM deliveries WHERE upload_id = ANY($1::uuid[])`,
        [ids],
      ));
      if (deliveries.length === 30 && deliveries.every((d) => d.delivery_status === 'sent')) break;
      if (Date.now() > deadlineSent) throw new Error(`deliveries not all sent: ${JSON.stringify(deliveries.filter((d) => d.delivery_status !== 'sent'))}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    const secret = (await findWebhookSecret(t.db, { id: tenantId }))!.webhookSecret;
    const wh = new Webhook(secret);
    const received = new Map<string, number>();
    for (const r of receiver.requests) {
      const id = String(r.headers['webhook-id']);
      received.set(id, (received.get(id) ?? 0) + 1);
      const payload = wh.verify(r.body, r.headers as Record<string, string>) as { uploadId: string; status: string };
      expect(`upload.${byId.get(payload.uploadId)!.status}`).toBe(deliveries.find((d) => d.id === id)!.event);
    }
    for (const d of deliveries) {
      expect(d.event).toBe(`upload.${byId.get(d.upload_id)!.status}`);
      const { rows: attempts } = await t.pool.query('SELECT count(*)::int AS n FROM delivery_attempts WHERE delivery_id = $1', [d.id]);
      expect(received.get(d.id), `delivery ${d.id}`).toBe(attempts[0].n);
      expect(d.attempts).toBe(attempts[0].n);
    }
    expect(deliveries.some((d) => d.attempts >= 2)).toBe(true); // retries happened
  }, 420_000);
});
