// bench:webhooks --endpoints E: isolation between receivers. One tenant with E endpoints; uploads
// finish (the worker's real final transaction: one event each) in committed transactions spread over
// --spread-ms, and the dispatchers expand each event into E deliveries. Run twice in one invocation,
// each on a fresh database: with `hanging` endpoints that never answer (each attempt runs into
// WEBHOOK_TIMEOUT_MS) and `failing` ones answering 500, then with the healthy endpoints alone. Prints
// deliveries/s and commit→receipt latency of the HEALTHY endpoints in both runs, and their ratio.
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type pg from 'pg';
import { loadConfig } from '../../src/config.ts';
import { migrate } from '../../src/db/migrate.ts';
import { createDb, createPool } from '../../src/db/pool.ts';
import { completeUpload, type ClaimedUpload } from '../../src/ingest/upload-state.ts';
import { createLogger } from '../../src/logger.ts';
import { startDispatcher, type DispatcherHandle } from '../../src/notify/dispatcher.ts';
import { createEndpoint } from '../../src/notify/endpoints.repository.ts';
import { ensureTenant } from '../../src/tenants/tenants.repository.ts';
import { adminExec, dropBenchDatabase, randomDatabaseName, withDatabase } from './db.ts';

export interface FleetOptions {
  adminUrl: string;
  deliveries: number;
  endpoints: number;
  hanging: number;
  failing: number;
  spreadMs: number;
  dispatchers: number;
  producers: number;
  /** env for loadConfig beyond the database (WEBHOOK_TIMEOUT_MS, ENDPOINT_MAX_IN_FLIGHT, …) */
  env: Record<string, string>;
}

export interface FleetRun {
  /** healthy endpoints' commit→receipt latencies (ms), sorted */
  latencies: number[];
  healthyDeliveries: number;
  /** healthy deliveries per second, first commit → last healthy receipt */
  perSecond: number;
  commitSeconds: number;
  duplicates: number;
  /** requests the hanging and failing endpoints received */
  badRequests: number;
}

type Kind = 'healthy' | 'hanging' | 'failing';

/** events sent to the warm-up tenant's healthy endpoints before each run's measured load */
const WARM_UP_EVENTS = 10;

/** One HTTP server for all endpoints (/ep/<i>); what it does depends on the endpoint's kind. */
async function startFleetReceiver(kinds: Kind[], onHealthy: (uploadId: string, endpoint: number, webhookId: string) => void) {
  const sockets = new Set<Socket>();
  let badRequests = 0;
  let warmed = 0;
  const server: Server = createServer((req, res) => {
    const segment = req.url?.split('/')[2] ?? '';
    const endpoint = Number(segment);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (segment.startsWith('w')) return void (warmed += 1, res.writeHead(204).end()); // warm-up endpoints
      const kind = kinds[endpoint];
      if (kind === 'hanging') return void (badRequests += 1); // never answered: the attempt times out
      if (kind === 'failing') {
        badRequests += 1;
        return void res.writeHead(500).end('down');
      }
      res.writeHead(204).end();
      const { uploadId } = JSON.parse(Buffer.concat(chunks).toString()) as { uploadId: string };
      onHealthy(uploadId, endpoint, String(req.headers['webhook-id']));
    });
  });
  server.keepAliveTimeout = 30_000;
  server.on('connection', (s: Socket) => (sockets.add(s), s.on('close', () => sockets.delete(s))));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/ep`;
  return {
    base,
    badRequests: () => badRequests,
    warmed: () => warmed,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** One run on a fresh database; `kinds[i]` is endpoint i's behaviour. */
export async function runFleet(opts: FleetOptions, kinds: Kind[]): Promise<FleetRun> {
  const events = Math.ceil(opts.deliveries / opts.endpoints);
  const healthyCount = kinds.filter((k) => k === 'healthy').length;
  const expected = events * healthyCount;
  const receivedAt = new Map<string, number>(); // `${uploadId} ${endpoint}` → ms
  const idsSeen = new Map<string, number>();
  let done: () => void = () => {};
  const allArrived = new Promise<void>((resolve) => (done = resolve));
  const receiver = await startFleetReceiver(kinds, (uploadId, endpoint, webhookId) => {
    const at = performance.now();
    idsSeen.set(webhookId, (idsSeen.get(webhookId) ?? 0) + 1);
    const key = `${uploadId} ${endpoint}`;
    if (!receivedAt.has(key)) receivedAt.set(key, at);
    if (receivedAt.size === expected) done();
  });

  const database = randomDatabaseName();
  const databaseUrl = withDatabase(opts.adminUrl, database);
  await adminExec(opts.adminUrl, `CREATE DATABASE ${database}`);
  const pools: pg.Pool[] = [];
  const dispatchers: DispatcherHandle[] = [];
  try {
    const pool = createPool(databaseUrl, 'stream-api-bench-producer', opts.producers + 2);
    pools.push(pool);
    await migrate(pool);
    const db = createDb(pool);
    const tenant = await ensureTenant(db, 'bench');
    for (let i = 0; i < kinds.length; i++) {
      await createEndpoint(db, tenant.id, { url: `${receiver.base}/${i}`, description: kinds[i]!, eventTypes: [], channel: 'webhook', enabled: true, rateLimitPerSecond: null });
    }
    const uploads = await processingUploads(pool, tenant.id, events);
    // Warm-up, not measured: another tenant's healthy endpoints on the same receiver get a few events
    // first, so neither run's figures include process start-up (JIT, connections, caches), and the
    // failing endpoints' effect is measured from their first request.
    const warmTenant = await ensureTenant(db, 'bench-warm-up');
    for (let i = 0; i < healthyCount; i++) {
      await createEndpoint(db, warmTenant.id, { url: `${receiver.base}/w${i}`, description: 'warm-up', eventTypes: [], channel: 'webhook', enabled: true, rateLimitPerSecond: null });
    }
    const warmUploads = await processingUploads(pool, warmTenant.id, WARM_UP_EVENTS);

    const config = loadConfig({ DATABASE_URL: databaseUrl, WEBHOOK_ALLOWED_CIDRS: '127.0.0.0/8', ...opts.env });
    const logger = createLogger('warn');
    for (let i = 0; i < opts.dispatchers; i++) {
      const dispatcherPool = createPool(databaseUrl, 'stream-api-bench-dispatcher', 20);
      pools.push(dispatcherPool);
      dispatchers.push(await startDispatcher({ pool: dispatcherPool, config, logger, databaseUrl }));
    }

    await produce(pool, warmUploads, { ...opts, spreadMs: 500 });
    for (const until = Date.now() + 60_000; receiver.warmed() < WARM_UP_EVENTS * healthyCount; ) {
      if (Date.now() > until) throw new Error('the warm-up deliveries did not all arrive within 60 s');
      await new Promise((r) => setTimeout(r, 20));
    }
    await new Promise((r) => setTimeout(r, 200)); // their records committed

    const committedAt = await produce(pool, uploads, opts);
    const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`healthy endpoints got ${receivedAt.size} of ${expected} deliveries within 180 s`)), 180_000).unref());
    await Promise.race([allArrived, timeout]);
    await new Promise((r) => setTimeout(r, 300)); // room for a duplicate to show up

    const latencies = [...receivedAt].map(([key, at]) => at - committedAt.get(key.split(' ')[0]!)!).sort((a, b) => a - b);
    const firstCommit = Math.min(...committedAt.values());
    const lastCommit = Math.max(...committedAt.values());
    const lastReceipt = Math.max(...receivedAt.values());
    return {
      latencies,
      healthyDeliveries: expected,
      perSecond: expected / ((lastReceipt - firstCommit) / 1000),
      commitSeconds: (lastCommit - firstCommit) / 1000,
      duplicates: [...idsSeen.values()].filter((c) => c > 1).length,
      badRequests: receiver.badRequests(),
    };
  } finally {
    await receiver.close(); // first: hanging attempts end at once, so the dispatchers stop quickly
    await Promise.all(dispatchers.map((d) => d.stop()));
    for (const pool of pools) await pool.end().catch(() => {});
    await dropBenchDatabase(opts.adminUrl, database).catch((err) => process.stderr.write(`drop failed: ${String(err)}\n`));
  }
}

/** `count` uploads of the tenant in `processing`, ready for their final transaction (not timed). */
async function processingUploads(pool: pg.Pool, tenantId: string, count: number): Promise<ClaimedUpload[]> {
  const { rows } = await pool.query<ClaimedUpload>(
    `INSERT INTO uploads (id, tenant_id, dataset, filename, size_bytes, sha256, object_key, status, attempt, started_at)
     SELECT gen_random_uuid(), $1, 'webhook_events', 'bench.csv', 100, repeat('0', 64), 'uploads/bench-' || gen_random_uuid(), 'processing', 1, now()
       FROM generate_series(1, $2) g
     RETURNING id, tenant_id, dataset, object_key, size_bytes, max_errors, max_error_ratio, attempt`,
    [tenantId, count],
  );
  return rows;
}

/** Upload i commits at ~start + i·spread/events through `producers` connections; the clock starts at COMMIT. */
async function produce(pool: pg.Pool, uploads: ClaimedUpload[], opts: FleetOptions): Promise<Map<string, number>> {
  const committedAt = new Map<string, number>();
  const start = performance.now();
  let next = 0;
  async function producer(): Promise<void> {
    const client = await pool.connect();
    try {
      while (next < uploads.length) {
        const i = next++;
        const upload = uploads[i]!;
        const wait = start + (i * opts.spreadMs) / uploads.length - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        await client.query('BEGIN');
        await completeUpload(client, upload, { rowsProcessed: 100, rowsFailed: 0, bytesProcessed: 100, uncompressedBytesProcessed: 100, compression: 'none', unknownColumns: [], csvHeader: null });
        const sent = performance.now();
        await client.query('COMMIT');
        committedAt.set(upload.id, sent);
      }
    } finally {
      client.release();
    }
  }
  await Promise.all(Array.from({ length: opts.producers }, producer));
  return committedAt;
}

/** Endpoint kinds: the first `hanging` hang, the next `failing` answer 500, the rest are healthy. */
export function fleetKinds(endpoints: number, hanging: number, failing: number): Kind[] {
  return Array.from({ length: endpoints }, (_, i) => (i < hanging ? 'hanging' : i < hanging + failing ? 'failing' : 'healthy'));
}
