// Processing a .csv.gz against the same file uncompressed, one run, one fresh database: the real
// `process-upload` task (S3 GetObject → [gunzip →] CSV→COPY transform with full validation → COPY →
// COMMIT with the status) in a child process, for each file in turn, the two interleaved, verified after
// each run. Prints rows/s of both, the ratio gzip / plain (best of each), the task's CPU and peak RSS.
//
// Usage: npm run bench:gzip -- [--rows 1000000] [--repeat 2] [--verbose]
//   DATABASE_URL  server to use (default postgres://postgres@127.0.0.1:5432/postgres); a database
//                 bench_<random> is created there, migrated, and dropped at the end (also on error)
//   S3_ENDPOINT   use this S3 server (with S3_BUCKET, S3_ACCESS_KEY_ID, …); default: an embedded
//                 s3rver in this process, its data under a temp dir
//   GZIP_MAX_RATIO, GZIP_MAX_UNCOMPRESSED_BYTES  the task's limits, as in the worker (defaults unless set)
// The files come from `stream-api generate --rows N [--gzip]` (same seed: the same CSV bytes).
import { spawn } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, open, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { parseArgs } from 'node:util';
import type pg from 'pg';
import { loadConfig } from '../src/config.ts';
import { webhookEvents } from '../src/ingest/datasets/index.ts';
import { startEmbeddedS3 } from '../src/storage/embedded-s3.ts';
import { ObjectStore, objectKeyFor, type ObjectStoreOptions } from '../src/storage/object-store.ts';
import { REPO_ROOT, runHelper, trackChild } from './lib/child.ts';
import { onCleanup, runBench } from './lib/cleanup.ts';
import { createBenchDatabase, DEFAULT_ADMIN_URL } from './lib/db.ts';
import { fixed, int, mbytes, mib, table } from './lib/format.ts';
import type { RunTaskInput, RunTaskResult } from './lib/run-task.ts';

const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '1000000' },
    repeat: { type: 'string', default: '2' },
    verbose: { type: 'boolean', default: false },
  },
});
const count = (name: 'rows' | 'repeat'): number => {
  const n = Number(values[name]!.replaceAll('_', ''));
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`--${name} needs a positive integer, got ${values[name]}`);
  return n;
};
const ROWS = count('rows');
const REPEAT = count('repeat');

/** `stream-api generate --rows N [--gzip]` into `file` (a child process: not in this process's memory). */
async function generate(file: string, gzip: boolean): Promise<number> {
  const fh = await open(file, 'w');
  try {
    const args = [path.join(REPO_ROOT, 'bin/stream-api.mjs'), 'generate', '--rows', String(ROWS), ...(gzip ? ['--gzip'] : [])];
    const child = spawn(process.execPath, args, { stdio: ['ignore', fh.fd, 'pipe'] });
    trackChild(child);
    let err = '';
    child.stderr!.on('data', (d) => (err += String(d)));
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    if (code !== 0) throw new Error(`stream-api generate exited with ${code}: ${err}`);
    await fh.sync();
  } finally {
    await fh.close();
  }
  return (await stat(file)).size;
}

interface Variant {
  name: 'plain .csv' | '.csv.gz';
  file: string;
  bytes: number;
  compression: 'none' | 'gzip';
}

interface Run {
  variant: Variant;
  seconds: number;
  task: RunTaskResult;
}

interface Ctx {
  pool: pg.Pool;
  store: ObjectStore;
  s3: ObjectStoreOptions;
  databaseUrl: string;
  tenantId: string;
  csvBytes: number;
}

/** The object and its uploads row, as the API leaves them (status 'uploaded'). */
async function prepare(ctx: Ctx, v: Variant): Promise<string> {
  const uploadId = randomUUID();
  const key = objectKeyFor(ctx.tenantId, uploadId);
  const hash = createHash('sha256');
  const tap = new PassThrough();
  tap.on('data', (chunk: Buffer) => hash.update(chunk));
  createReadStream(v.file, { highWaterMark: 1 << 20 }).on('error', (err) => tap.destroy(err)).pipe(tap);
  await ctx.store.putStream(key, tap);
  await ctx.pool.query(
    `INSERT INTO uploads (id, tenant_id, dataset, filename, size_bytes, sha256, object_key) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
    [uploadId, ctx.tenantId, webhookEvents.name, path.basename(v.file), v.bytes, hash.digest('hex'), key],
  );
  return uploadId;
}

/** One run of the task in a child process, then checks what it committed. */
async function runTask(ctx: Ctx, v: Variant): Promise<Run> {
  const uploadId = await prepare(ctx, v);
  await ctx.pool.query('CHECKPOINT');
  const input: RunTaskInput = {
    databaseUrl: ctx.databaseUrl,
    applicationName: 'stream-api-bench-task',
    s3: ctx.s3,
    uploadId,
    logLevel: values.verbose ? 'info' : 'warn',
  };
  const task = await runHelper<RunTaskResult>('./run-task.ts', input, { verbose: values.verbose }).done;
  const { rows } = await ctx.pool.query(
    `SELECT u.status, u.error, u.rows_processed, u.compression, u.bytes_processed, u.uncompressed_bytes_processed,
            (SELECT count(*)::bigint FROM webhook_events w WHERE w.upload_id = u.id) AS loaded
       FROM uploads u WHERE u.id = $1`,
    [uploadId],
  );
  const u = rows[0];
  const expected = { status: 'completed', rows: ROWS, compression: v.compression, bytes: v.bytes, csv: ctx.csvBytes };
  const got = { status: u.status, rows: u.loaded, compression: u.compression, bytes: u.bytes_processed, csv: u.uncompressed_bytes_processed };
  if (JSON.stringify(got) !== JSON.stringify(expected) || u.rows_processed !== ROWS) {
    throw new Error(`${v.name}: verification failed: got ${JSON.stringify(got)} (${u.error ?? 'no error'}), expected ${JSON.stringify(expected)}`);
  }
  await ctx.pool.query('TRUNCATE webhook_events');
  return { variant: v, seconds: task.commitSeconds ?? task.taskSeconds, task };
}

async function main(): Promise<void> {
  const config = loadConfig();
  const adminUrl = config.databaseUrl ?? DEFAULT_ADMIN_URL;
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'stream-api-gzip-bench-'));
  onCleanup(() => rm(tmp, { recursive: true, force: true }));
  const { name: dbName, databaseUrl, pool, tenantId } = await createBenchDatabase(adminUrl, 'stream-api-bench', 'bench');

  let endpoint = config.s3.endpoint;
  if (!endpoint) {
    const s3 = await startEmbeddedS3({ dataDir: tmp, port: 0, bucket: config.s3.bucket });
    onCleanup(() => s3.stop());
    endpoint = s3.endpoint;
  }
  const s3: ObjectStoreOptions = { ...config.s3, endpoint };
  const store = new ObjectStore(s3);
  onCleanup(async () => store.destroy());
  await store.ensureBucket();

  const plain: Variant = { name: 'plain .csv', file: path.join(tmp, 'events.csv'), bytes: 0, compression: 'none' };
  const gz: Variant = { name: '.csv.gz', file: path.join(tmp, 'events.csv.gz'), bytes: 0, compression: 'gzip' };
  plain.bytes = await generate(plain.file, false);
  gz.bytes = await generate(gz.file, true);
  const ctx: Ctx = { pool, store, s3, databaseUrl, tenantId, csvBytes: plain.bytes };
  console.log(
    `stream-api gzip bench — node ${process.version}, ${os.cpus().length} CPUs, database ${dbName} (fresh)\n` +
      `${int(ROWS)} rows: ${mbytes(plain.bytes)} MB plain, ${mbytes(gz.bytes)} MB gzip (${fixed(plain.bytes / gz.bytes, 1)}:1); ` +
      `the process-upload task in a child process, task start → COMMIT; ${REPEAT} run(s) of each, interleaved\n`,
  );

  const runs: Run[] = [];
  for (let i = 0; i < REPEAT; i++) {
    // Alternate which goes first, so neither always meets a freshly checkpointed or a warmer database.
    for (const v of i % 2 === 0 ? [plain, gz] : [gz, plain]) runs.push(await runTask(ctx, v));
  }
  const rowsOf = (r: Run) => ROWS / r.seconds;
  console.log(
    table(
      ['run', '>s', '>rows/s', '>stored MB/s', '>CSV MB/s', '>CPU user+sys s', '>peak RSS'],
      runs.map((r, i) => [
        `${r.variant.name} #${Math.floor(i / 2) + 1}`,
        fixed(r.seconds),
        int(rowsOf(r)),
        fixed(r.variant.bytes / 1e6 / r.seconds, 1),
        fixed(plain.bytes / 1e6 / r.seconds, 1),
        fixed(r.task.cpuUserSeconds + r.task.cpuSystemSeconds),
        mib(r.task.hwmKb),
      ]),
    ),
  );
  const load = os.loadavg().map((l) => fixed(l, 1)).join(' ');
  console.log(`load average at the end (1, 5, 15 min): ${load} on ${os.cpus().length} CPUs — over the CPU count, other work shared the machine`);
  const best = (v: Variant) => Math.max(...runs.filter((r) => r.variant === v).map(rowsOf));
  console.log(
    `\nratio gzip / plain, rows/s (best of ${REPEAT} each): ${int(best(gz))} / ${int(best(plain))} = ${fixed(best(gz) / best(plain))}` +
      `\nverified after each run: status completed, ${int(ROWS)} rows in webhook_events, compression and both byte counts as expected`,
  );
}

runBench(main);
