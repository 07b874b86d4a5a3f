// Memory under abuse, one run, one fresh database: ONE API process (`stream-api serve --role api` in
// a child process, default settings) takes 50 concurrent slow uploads (a few bytes per second, after
// an optional burst) and 200 open live streams at once. Its resident memory is sampled before (idle,
// after a warm-up) and during the abuse, and compared with the bar: 400 MB, under the 512 MB the
// container gets in docker-compose.yml. A /healthz probe every second shows whether it still answers.
//
// Usage: npm run bench:abuse -- [--uploads 50] [--streams 200] [--hold-seconds 30] [--burst-kib 0]
//                               [--bytes-per-second 4] [--verbose]
//   --burst-kib N   each upload first sends N KiB at once (4096: nearly a 5 MiB storage part held
//                   per upload, the worst a stalled upload can pin), then trickles
//   DATABASE_URL    server to use (default postgres://postgres@127.0.0.1:5432/postgres); a database
//                   bench_<random> is created there, migrated, and dropped at the end (also on error)
//   S3_ENDPOINT     use this S3 server (with S3_BUCKET, S3_ACCESS_KEY_ID, …); default: an embedded
//                   s3rver in this process, its data under a temp dir
// The per-tenant limits stay at their defaults: uploads and streams are spread over enough tenants.
// Exits 0 when the bar is missed (it is a measurement) and prints MISSED; non-zero only on errors.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/config.ts';
import { migrate } from '../src/db/migrate.ts';
import { createDb, createPool } from '../src/db/pool.ts';
import { startEmbeddedS3 } from '../src/storage/embedded-s3.ts';
import { ObjectStore } from '../src/storage/object-store.ts';
import { createApiKey, ensureTenant } from '../src/tenants/tenants.repository.ts';
import { openStream, probe, slowUpload, type OpenStream, type SlowUpload } from './lib/abuse-clients.ts';
import { startApiProcess } from './lib/api-process.ts';
import { killChildren } from './lib/child.ts';
import { adminExec, DEFAULT_ADMIN_URL, dropBenchDatabase, randomDatabaseName, withDatabase } from './lib/db.ts';
import { fixed, int, mib, table, verdict } from './lib/format.ts';
import { statusKb } from './lib/proc.ts';

const BAR_KB = 400 * 1024;

const { values } = parseArgs({
  options: {
    uploads: { type: 'string', default: '50' },
    streams: { type: 'string', default: '200' },
    'hold-seconds': { type: 'string', default: '30' },
    'burst-kib': { type: 'string', default: '0' },
    'bytes-per-second': { type: 'string', default: '4' },
    verbose: { type: 'boolean', default: false },
  },
});
const count = (name: keyof typeof values, min: number): number => {
  const n = Number(values[name]);
  if (!Number.isSafeInteger(n) || n < min) throw new Error(`--${name} needs an integer ≥ ${min}, got ${String(values[name])}`);
  return n;
};
const UPLOADS = count('uploads', 0);
const STREAMS = count('streams', 0);
const HOLD_SECONDS = count('hold-seconds', 1);
const BURST_BYTES = count('burst-kib', 0) * 1024;
const BYTES_PER_SECOND = count('bytes-per-second', 1);

const undo: (() => Promise<unknown>)[] = [];
let cleaning: Promise<void> | null = null;
const cleanup = () =>
  (cleaning ??= (async () => {
    killChildren();
    for (const fn of undo.reverse()) await fn().catch((err: Error) => console.error(`cleanup: ${err.message}`));
  })());
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => void cleanup().finally(() => process.exit(130)));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resident memory of `pid` sampled every 100 ms while `during` runs: peak and median (KiB). */
async function sampleRss(pid: number, during: Promise<unknown>): Promise<{ peakKb: number; medianKb: number }> {
  const samples: number[] = [];
  let running = true;
  void during.finally(() => (running = false));
  while (running) {
    const kb = statusKb(pid, 'VmRSS');
    if (kb !== null) samples.push(kb);
    await sleep(100);
  }
  samples.sort((a, b) => a - b);
  return { peakKb: samples.at(-1) ?? 0, medianKb: samples[samples.length >> 1] ?? 0 };
}

async function main(): Promise<void> {
  const config = loadConfig();
  const adminUrl = config.databaseUrl ?? DEFAULT_ADMIN_URL;
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'stream-api-abuse-'));
  undo.push(() => rm(tmp, { recursive: true, force: true }));
  const dbName = randomDatabaseName();
  await adminExec(adminUrl, `CREATE DATABASE ${dbName}`);
  undo.push(() => dropBenchDatabase(adminUrl, dbName));
  const databaseUrl = withDatabase(adminUrl, dbName);
  const pool = createPool(databaseUrl, 'stream-api-bench', 2);
  const db = createDb(pool);
  undo.push(() => db.destroy());
  await migrate(pool);

  let endpoint = config.s3.endpoint;
  if (!endpoint) {
    const s3 = await startEmbeddedS3({ dataDir: tmp, port: 0, bucket: config.s3.bucket });
    undo.push(() => s3.stop());
    endpoint = s3.endpoint;
  }
  const store = new ObjectStore({ ...config.s3, endpoint });
  await store.ensureBucket();
  store.destroy();

  // Enough tenants that no per-tenant default limit refuses the abuse: it is memory that is measured.
  const defaults = loadConfig({}).limits;
  const tenantCount = Math.max(1, Math.ceil(UPLOADS / defaults.uploadsInFlight), Math.ceil(STREAMS / defaults.liveStreams));
  const keys: string[] = [];
  for (let i = 0; i < tenantCount; i++) keys.push(await createApiKey(db, (await ensureTenant(db, `abuse-${i}`)).id));

  const api = await startApiProcess({
    DATABASE_URL: databaseUrl,
    S3_ENDPOINT: endpoint,
    S3_BUCKET: config.s3.bucket,
    S3_ACCESS_KEY_ID: config.s3.accessKeyId || 'S3RVER',
    S3_SECRET_ACCESS_KEY: config.s3.secretAccessKey || 'S3RVER',
    DEV_API_KEY: 'false',
  }, { verbose: values.verbose });
  undo.push(() => api.stop());
  const { pid, url } = api;
  console.log(
    `stream-api abuse bench — node ${process.version}, ${os.cpus().length} CPUs, database ${dbName} (fresh), API pid ${pid} at ${url}\n` +
      `${int(UPLOADS)} slow uploads (${BURST_BYTES ? `${int(BURST_BYTES / 1024)} KiB at once, then ` : ''}${BYTES_PER_SECOND} B/s) + ` +
      `${int(STREAMS)} open live streams, over ${tenantCount} tenant(s), held ${HOLD_SECONDS} s\n`,
  );

  // Warm-up, so the idle figure includes what any first request loads (the AWS SDK, the live hub's
  // LISTEN): one upload per tenant (the upload its streams follow), one stream.
  const uploadIds: string[] = [];
  for (const key of keys) {
    const form = new FormData();
    form.append('file', new Blob(['event_id,event_type,occurred_at\n']), 'warm.csv');
    const res = await fetch(`${url}/upload`, { method: 'POST', headers: { authorization: `Bearer ${key}` }, body: form });
    if (res.status !== 202) throw new Error(`warm-up upload answered ${res.status}: ${await res.text()}`);
    uploadIds.push(((await res.json()) as { uploadId: string }).uploadId);
  }
  (await openStream(url, '/events', keys[0]!)).close();
  await sleep(2000);
  const idle = await sampleRss(pid, sleep(3000));

  const streams: OpenStream[] = [];
  const uploads: SlowUpload[] = [];
  const probes: (number | null)[] = [];
  const abuse = (async () => {
    for (let i = 0; i < STREAMS; i++) {
      const tenant = i % keys.length;
      streams.push(await openStream(url, i % 2 === 0 ? '/events' : `/uploads/${uploadIds[tenant]}/events`, keys[tenant]!));
    }
    const tickMs = 250;
    for (let i = 0; i < UPLOADS; i++) {
      uploads.push(slowUpload(url, keys[i % keys.length]!, {
        declaredBytes: BURST_BYTES + 64 * 1024 * 1024,
        burstBytes: BURST_BYTES,
        bytesPerTick: Math.max(1, Math.round((BYTES_PER_SECOND * tickMs) / 1000)),
        tickMs,
      }));
    }
    for (let s = 0; s < HOLD_SECONDS; s++) {
      probes.push(await probe(url, '/healthz'));
      await sleep(1000);
    }
  })();
  const loaded = await sampleRss(pid, abuse);
  await abuse;

  const streamsOpen = streams.filter((s) => s.status() === 200).length;
  const uploadsHeld = uploads.filter((u) => u.answer() === null).length;
  const answered = probes.filter((p): p is number => p !== null).sort((a, b) => a - b);
  for (const s of streams) s.close();
  for (const u of uploads) u.close();

  const perConnectionKb = (loaded.peakKb - idle.medianKb) / Math.max(1, UPLOADS + STREAMS);
  console.log(
    table(
      ['what', '>RSS', 'note'],
      [
        ['idle (after warm-up), median', mib(idle.medianKb), `peak ${mib(idle.peakKb)}`],
        ['under abuse, median', mib(loaded.medianKb), `${streamsOpen}/${STREAMS} streams open, ${uploadsHeld}/${UPLOADS} uploads still being received`],
        ['under abuse, peak', mib(loaded.peakKb), `+${mib(loaded.peakKb - idle.medianKb)} over idle, ~${fixed(perConnectionKb, 0)} KiB per connection`],
      ],
    ),
  );
  console.log(
    `\n/healthz during the abuse: ${answered.length}/${probes.length} answered, ` +
      `p50 ${fixed(answered[answered.length >> 1] ?? null, 1)} ms, max ${fixed(answered.at(-1) ?? null, 1)} ms`,
  );
  const ok = loaded.peakKb <= BAR_KB && streamsOpen === STREAMS && uploadsHeld === UPLOADS;
  console.log(`peak RSS ${mib(loaded.peakKb)} vs bar ${mib(BAR_KB)}: ${verdict(ok)}${ok ? '' : ' (see the counts above)'}`);
}

main()
  .then(() => cleanup())
  .catch(async (err: unknown) => {
    console.error(err);
    await cleanup();
    process.exitCode = 1;
  });
