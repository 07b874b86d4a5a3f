// End-to-end ingest benchmark, one run, one fresh database:
//   (a) baseline  psql `\copy … (FORMAT csv, HEADER)` of the file into a table shaped like
//                 webhook_events (same defaults, indexes, constraints)
//   (b) service   the real `process-upload` task (S3 GetObject → CSV→COPY transform with full
//                 validation → COPY, one transaction with the final status) in a child process
//                 whose resident memory is sampled
// then the same (b) on a bigger file to show that memory stays flat.
//
// Usage: npm run bench -- [--rows 1000000] [--big 5000000] [--skip-big] [--big-no-baseline]
//                         [--repeat 1] [--breakdown | --no-breakdown] [--verbose]
//   --skip-big         no big run;  --big-no-baseline: the big run without (a) (saves ~25 s)
//   --repeat N         main run: (a) and (b) N times, interleaved; ratio of the best of each
//   --breakdown        also time (b)'s stages alone (S3 read, transform, raw COPY); by default this
//                      runs only when the ratio target is missed; --no-breakdown never
//   --verbose          the children's logs on stderr
//   DATABASE_URL    server to use (default postgres://postgres@127.0.0.1:5432/postgres); a database
//                   bench_<random> is created there and dropped at the end (also on error / Ctrl-C)
//   S3_ENDPOINT     use this S3 server (with S3_BUCKET, S3_ACCESS_KEY_ID, …); default: an embedded
//                   s3rver started in this process, its data under the run's temp dir
//   --dataset wide     instead: a tenant's dataset of 20 mixed columns, --rows N (default 1M), --repeat N, the service
//                      against psql \copy into an identical and into a plain table, append and upsert
//                      (bench/lib/wide-bench.ts)
// Exits 0 when targets are missed (it is a measurement) and prints MISSED; non-zero only on errors.

import { spawn } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, open, rm, stat, statfs } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { loadConfig } from '../src/config.ts';
import { migrate } from '../src/db/migrate.ts';
import { createDb, createPool } from '../src/db/pool.ts';
import { webhookEvents } from '../src/ingest/datasets/index.ts';
import { startEmbeddedS3 } from '../src/storage/embedded-s3.ts';
import { ObjectStore, objectKeyFor, type ObjectStoreOptions } from '../src/storage/object-store.ts';
import { ensureTenant } from '../src/tenants/tenants.repository.ts';
import { killChildren, runHelper, trackChild } from './lib/child.ts';
import { DEFAULT_ADMIN_URL, dropBenchDatabase, adminExec, randomDatabaseName, withDatabase } from './lib/db.ts';
import { fixed, int, mbytes, mib, table, verdict } from './lib/format.ts';
import { cleanup as cleanupShared } from './lib/cleanup.ts';
import type { RunTaskInput, RunTaskResult } from './lib/run-task.ts';
import { describeWaits, Sampler, type SampleResult, type Snapshot } from './lib/sampler.ts';
import type { StageInput, StageResult } from './lib/stages.ts';
import { benchWideDataset } from './lib/wide-bench.ts';

// The product's own generator (`stream-api generate`), run as a child so it is not in the bench's memory.
const BIN = fileURLToPath(new URL('../bin/stream-api.mjs', import.meta.url));
const TARGET_RATIO = 0.8;
const TARGET_RSS_KB = 256 * 1024;
const TARGET_RSS_GROWTH = 0.1;
const APP_TASK = 'stream-api-bench-task';
const APP_PSQL = 'stream-api-bench-psql';
const APP_COPY = 'stream-api-bench-copy';
const COLUMNS = webhookEvents.columns.map((c) => c.name);

// ---------------------------------------------------------------------------------------------
// options

interface Options {
  rows: number;
  big: number;
  skipBig: boolean;
  breakdown: 'auto' | 'on' | 'off';
  repeat: number;
  bigSkipBaseline: boolean;
  verbose: boolean;
  dataset: 'webhook_events' | 'wide';
}

function parseOptions(argv: string[]): Options {
  const opts: Options = { rows: 1_000_000, big: 5_000_000, skipBig: false, breakdown: 'auto', repeat: 1, bigSkipBaseline: false, verbose: false, dataset: 'webhook_events' };
  const count = (name: string, value: string | undefined): number => {
    const n = Number((value ?? '').replaceAll('_', '').replaceAll(',', ''));
    if (!Number.isSafeInteger(n) || n < 1) throw new Error(`--${name} needs a positive integer, got ${JSON.stringify(value)}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i]!.split('=', 2) as [string, string | undefined];
    const value = () => inline ?? argv[++i];
    switch (flag) {
      case '--rows': opts.rows = count('rows', value()); break;
      case '--big': opts.big = count('big', value()); break;
      case '--skip-big': opts.skipBig = true; break;
      case '--big-no-baseline': opts.bigSkipBaseline = true; break;
      case '--repeat': opts.repeat = count('repeat', value()); break;
      case '--breakdown': opts.breakdown = 'on'; break;
      case '--no-breakdown': opts.breakdown = 'off'; break;
      case '--verbose': opts.verbose = true; break;
      case '--dataset': {
        const name = value();
        if (name !== 'wide' && name !== 'webhook_events') throw new Error(`--dataset is wide or webhook_events, got ${JSON.stringify(name)}`);
        opts.dataset = name;
        break;
      }
      case '--help': case '-h':
        console.log('npm run bench -- [--dataset wide] [--rows N] [--big N] [--skip-big] [--big-no-baseline] [--repeat N] [--breakdown|--no-breakdown] [--verbose]');
        process.exit(0);
      default: throw new Error(`unknown option ${flag}`);
    }
  }
  return opts;
}

// ---------------------------------------------------------------------------------------------
// cleanup: everything created is registered here and undone in reverse order, once

const undo: { name: string; fn: () => Promise<unknown> }[] = [];
let cleaning: Promise<void> | null = null;

function onCleanup(name: string, fn: () => Promise<unknown>): void {
  undo.push({ name, fn });
}

function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    killChildren();
    for (const { name, fn } of undo.reverse()) {
      await fn().catch((err: Error) => console.error(`cleanup: ${name} failed: ${err.message}`));
    }
  })();
  return cleaning;
}

// `process.on`, not `once`: a Ctrl-C reaches this process twice (from the terminal and relayed by
// the tsx CLI), and a second signal with no listener left would end the process mid-cleanup.
let signals = 0;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    signals++;
    if (signals === 1) {
      console.error(`\n${signal}: stopping, dropping the bench database and deleting temp files…`);
      void cleanup().finally(() => process.exit(130));
    } else if (signals > 3) {
      process.exit(130); // asked repeatedly: give up on cleaning up
    }
  });
}

// ---------------------------------------------------------------------------------------------
// small helpers

const seconds = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e9;

function waitExit(child: ReturnType<typeof spawn>, what: string, stderr: () => string): Promise<void> {
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) =>
      code === 0 ? resolve() : reject(new Error(`${what} exited with ${signal ?? `code ${code}`}: ${stderr()}`)),
    );
  });
}

async function generate(rows: number, file: string): Promise<number> {
  const fh = await open(file, 'w');
  try {
    const child = spawn(process.execPath, [BIN, 'generate', '--rows', String(rows)], { stdio: ['ignore', fh.fd, 'pipe'] });
    trackChild(child);
    let err = '';
    child.stderr!.setEncoding('utf8').on('data', (s: string) => (err += s));
    await waitExit(child, 'stream-api generate', () => err);
    await fh.sync(); // written out now, not during a timed stage
  } finally {
    await fh.close();
  }
  return (await stat(file)).size;
}

/** `psql -c "\copy …"`: its pid (to sample) and the row count psql reports. */
function psqlCopy(databaseUrl: string, uploadId: string, command: string): { pid: number; done: Promise<number> } {
  const child = spawn('psql', ['-X', '-v', 'ON_ERROR_STOP=1', '-d', databaseUrl, '-c', command], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, PGOPTIONS: `-c app.upload_id=${uploadId}`, PGAPPNAME: APP_PSQL },
  });
  trackChild(child);
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (err += s));
  const done = waitExit(child, 'psql', () => err).then(() => Number(/COPY (\d+)/.exec(out)?.[1] ?? NaN));
  return { pid: child.pid!, done };
}

async function diskFree(dir: string): Promise<string> {
  const s = await statfs(dir);
  return `${((s.bavail * s.bsize) / 1e9).toFixed(1)} GB free`;
}

// ---------------------------------------------------------------------------------------------
// the run

interface Env {
  adminUrl: string;
  benchUrl: string;
  pool: pg.Pool; // bench database: setup and verification
  admin: pg.Pool; // admin database: pg_stat_activity lookups, CHECKPOINT
  s3: ObjectStoreOptions;
  embeddedS3: boolean;
  store: ObjectStore;
  tenantId: string;
  tmp: string;
  opts: Options;
}

/** CPU and waits around one timed stage. */
interface Cost {
  /** CPU seconds of the client process (psql, or the node child). */
  clientCpu: number | null;
  /** CPU seconds of the PostgreSQL backends serving it. */
  backendCpu: number;
  /** CPU seconds of this bench process = the embedded s3rver serving GetObject (+ the sampler). */
  benchCpu: number;
  /** Everything else busy on the machine meanwhile (PG walwriter/checkpointer, other users…). */
  otherCpu: number;
  /** Machine busy share of 2 cores during the stage. */
  utilisation: number;
  /** The COPY backend's time by wait event. */
  waits: string;
}

interface Measured extends Cost {
  rows: number;
  bytes: number;
  seconds: number;
}

interface ServiceRun extends Measured {
  task: RunTaskResult;
  sampledPeakKb: number | null;
  samples: number;
  verified: string;
}

interface SizeResult {
  rows: number;
  bytes: number;
  generateSeconds: number;
  a: Measured[];
  uploadSeconds: number[];
  b: ServiceRun[];
  breakdown: string | null;
}

const best = <T extends { seconds: number }>(runs: T[]): T => runs.reduce((x, y) => (y.seconds < x.seconds ? y : x));

async function checkpoint(env: Env): Promise<void> {
  await env.admin.query('CHECKPOINT');
}

/**
 * Runs `start` (which spawns the process to watch) under a Sampler following `appName`'s backends.
 * CPU is counted between the child's `MARK start` and `MARK end` when it prints them (so its
 * start-up is not counted), else over the whole life of the process.
 */
async function measure<T>(
  env: Env,
  appName: string | null,
  start: (onMark: (name: string) => void) => { pid: number; done: Promise<T> },
): Promise<{ value: T; seconds: number; cost: Cost; sample: SampleResult }> {
  const sampler = new Sampler(appName ? { backends: { admin: env.admin, applicationName: appName } } : {}).start();
  const marks = new Map<string, Snapshot & { benchCpu: number }>();
  const snap = () => {
    const c = process.cpuUsage();
    return { ...sampler.snapshot(), benchCpu: (c.user + c.system) / 1e6 };
  };
  const first = snap();
  let value: T;
  let elapsed: number;
  try {
    const run = start((name) => marks.set(name, snap()));
    sampler.setPid(run.pid);
    value = await run.done;
    elapsed = Number(process.hrtime.bigint() - first.at) / 1e9;
  } finally {
    await sampler.stop();
  }
  const s = await sampler.stop();
  const last = { ...snap(), processCpu: s.processCpu ?? 0, backendCpu: s.backendCpu };
  const a = marks.get('start') ?? first;
  const b = marks.get('end') ?? last;
  const wall = Number(b.at - a.at) / 1e9;
  const clientCpu = b.processCpu - a.processCpu;
  const backendCpu = b.backendCpu - a.backendCpu;
  const benchCpu = b.benchCpu - a.benchCpu;
  const machineCpu = b.machineCpu - a.machineCpu;
  return {
    value,
    seconds: elapsed,
    sample: s,
    cost: {
      clientCpu,
      backendCpu,
      benchCpu,
      otherCpu: Math.max(0, machineCpu - clientCpu - backendCpu - benchCpu),
      utilisation: machineCpu / (wall * os.cpus().length),
      waits: appName ? describeWaits(s) : '',
    },
  };
}

/** (a): psql \copy of the CSV into a fresh table LIKE webhook_events INCLUDING ALL. */
async function runBaseline(env: Env, file: string, rows: number, bytes: number): Promise<Measured> {
  await env.pool.query(`
    DROP TABLE IF EXISTS bench_baseline;
    DROP SEQUENCE IF EXISTS bench_baseline_line;
    CREATE TABLE bench_baseline (LIKE webhook_events INCLUDING ALL);
    -- The file has no line-number column (the service sends one per row): a cached sequence keeps
    -- line_number NOT NULL and the (upload_id, line_number) unique index fed with distinct values.
    CREATE SEQUENCE bench_baseline_line START 2 CACHE 1000;
    ALTER TABLE bench_baseline ALTER COLUMN line_number SET DEFAULT nextval('bench_baseline_line');`);
  await checkpoint(env);
  const m = await measure(env, APP_PSQL, () =>
    psqlCopy(env.benchUrl, randomUUID(), `\\copy bench_baseline (${COLUMNS.join(',')}) FROM '${file}' WITH (FORMAT csv, HEADER)`),
  );
  const { rows: counted } = await env.pool.query<{ n: number }>('SELECT count(*)::bigint AS n FROM bench_baseline');
  if (m.value !== rows || counted[0]!.n !== rows) {
    throw new Error(`baseline loaded ${m.value} (counted ${counted[0]!.n}) rows, the file has ${rows}`);
  }
  await env.pool.query('DROP TABLE bench_baseline; DROP SEQUENCE bench_baseline_line');
  return { rows, bytes, seconds: m.seconds, ...m.cost };
}

/** Streams the file into the object store with ObjectStore.putStream; returns seconds and sha256. */
async function uploadObject(env: Env, key: string, file: string): Promise<{ seconds: number; sha256: string }> {
  const hash = createHash('sha256');
  const tap = new PassThrough();
  tap.on('data', (chunk: Buffer) => hash.update(chunk));
  const t0 = process.hrtime.bigint();
  createReadStream(file, { highWaterMark: 1 << 20 }).on('error', (err) => tap.destroy(err)).pipe(tap);
  await env.store.putStream(key, tap);
  return { seconds: seconds(t0), sha256: hash.digest('hex') };
}

/** Object + uploads row, as the API leaves them (status 'uploaded'). */
async function prepareUpload(env: Env, file: string, bytes: number): Promise<{ uploadId: string; uploadSeconds: number }> {
  const uploadId = randomUUID();
  const key = objectKeyFor(env.tenantId, uploadId);
  const up = await uploadObject(env, key, file);
  await env.pool.query(
    `INSERT INTO uploads (id, tenant_id, dataset, filename, size_bytes, sha256, object_key)
     VALUES ($1, $2, $3, $4, $5, $6, $7)`,
    [uploadId, env.tenantId, webhookEvents.name, path.basename(file), bytes, up.sha256, key],
  );
  return { uploadId, uploadSeconds: up.seconds };
}

/** (b): the process-upload task in a child process; verified afterwards. */
async function runService(env: Env, rows: number, bytes: number, uploadId: string): Promise<ServiceRun> {
  await checkpoint(env);
  const input: RunTaskInput = {
    databaseUrl: env.benchUrl,
    applicationName: APP_TASK,
    s3: env.s3,
    uploadId,
    logLevel: env.opts.verbose ? 'info' : 'warn',
  };
  const m = await measure(env, APP_TASK, (onMark) => runHelper<RunTaskResult>('./run-task.ts', input, { verbose: env.opts.verbose, onMark }));
  const task = m.value;

  const { rows: state } = await env.pool.query(
    `SELECT status, rows_processed, rows_failed, error_code, error, object_deleted_at FROM uploads WHERE id = $1`,
    [uploadId],
  );
  const { rows: counted } = await env.pool.query<{ n: number }>(
    'SELECT count(*)::bigint AS n FROM webhook_events WHERE upload_id = $1',
    [uploadId],
  );
  const u = state[0];
  const n = counted[0]!.n;
  if (!u || u.status !== 'completed' || n !== rows || u.rows_processed !== rows) {
    throw new Error(`(b) verification failed: upload ${JSON.stringify(u)}, webhook_events rows ${n}, file rows ${rows}`);
  }
  await env.pool.query('TRUNCATE webhook_events');
  return {
    rows,
    bytes,
    // Task start → COMMIT, measured inside the child (no process start-up, no post-commit delete).
    seconds: task.commitSeconds ?? task.taskSeconds,
    ...m.cost,
    task,
    sampledPeakKb: m.sample.peakRssKb,
    samples: m.sample.samples,
    verified:
      `webhook_events rows for the upload = ${int(n)} = file rows; status ${u.status}, ` +
      `rows_failed ${u.rows_failed}, object ${u.object_deleted_at ? 'deleted by the task' : 'NOT deleted'}`,
  };
}

function costCells(c: Cost, embeddedS3: boolean): string[] {
  return [
    fixed(c.clientCpu),
    fixed(c.backendCpu),
    embeddedS3 ? fixed(c.benchCpu) : '–',
    fixed(c.otherCpu),
    `${Math.round(c.utilisation * 100)}%`,
  ];
}
const COST_HEADERS = ['>CPU client s', '>CPU PG backend s', '>CPU s3rver s', '>CPU other s', '>busy (2 cores)'];

/** (b)'s stages alone, on the same bytes, each in its own process. Returns a printed table. */
async function runBreakdown(env: Env, file: string, rows: number, bytes: number, full: ServiceRun): Promise<string> {
  const key = `bench/${randomUUID()}.csv`;
  const up = await uploadObject(env, key, file);
  const copyFile = path.join(env.tmp, 'copy-input.csv');
  const lines: string[][] = [];
  const add = (name: string, secs: number, c: Cost, note = '') =>
    lines.push([name, fixed(secs), int(rows / secs), fixed(full.seconds / secs), ...costCells(c, env.embeddedS3), note]);
  const stage = async (input: StageInput, appName: string | null = null) => {
    const m = await measure(env, appName, (onMark) => runHelper<StageResult>('./stages.ts', input, { verbose: env.opts.verbose, onMark }));
    const r = m.value;
    return { r, cost: m.cost };
  };
  try {
    add('(b) full task (from above)', full.seconds, full, full.waits);

    const read = await stage({ stage: 's3-read', s3: env.s3, key });
    if (read.r.bytesIn !== bytes) throw new Error(`s3-read got ${read.r.bytesIn} bytes, expected ${bytes}`);
    add('S3 GetObject → discard', read.r.seconds, read.cost);

    const s3t = await stage({ stage: 's3-transform', s3: env.s3, key });
    add('S3 GetObject → transform → discard', s3t.r.seconds, s3t.cost, `${int(s3t.r.rows ?? 0)} rows out, ${s3t.r.rejected} rejected`);

    const ft = await stage({ stage: 'file-transform', file });
    add('local file → transform → discard', ft.r.seconds, ft.cost, `${mbytes(ft.r.bytesOut ?? 0)} MB of COPY data out`);

    // The transform's output, kept once, so COPY can be timed without any JS work before it.
    const prep = await stage({ stage: 'file-transform', file, out: copyFile });
    if (prep.r.rows !== rows) throw new Error(`transform accepted ${prep.r.rows} of ${rows} rows`);

    for (const writeBytes of [1 << 20, 64 << 10]) {
      await env.pool.query('TRUNCATE webhook_events');
      await checkpoint(env);
      const copy = await stage({ stage: 'copy-file', file: copyFile, databaseUrl: env.benchUrl, applicationName: APP_COPY, writeBytes }, APP_COPY);
      if (copy.r.rows !== rows) throw new Error(`raw COPY stored ${copy.r.rows} of ${rows} rows`);
      add(`COPY of transform output: node CopySink, ${writeBytes >> 10} KiB writes`, copy.r.seconds, copy.cost, copy.cost.waits);
    }

    await env.pool.query('TRUNCATE webhook_events');
    await checkpoint(env);
    const m = await measure(env, APP_PSQL, () =>
      psqlCopy(env.benchUrl, randomUUID(), `\\copy webhook_events (line_number,${COLUMNS.join(',')}) FROM '${copyFile}' WITH (FORMAT csv)`),
    );
    if (m.value !== rows) throw new Error(`psql COPY of the transform output stored ${m.value} of ${rows} rows`);
    add('COPY of transform output: psql \\copy', m.seconds, m.cost, m.cost.waits);
    await env.pool.query('TRUNCATE webhook_events');
  } finally {
    await rm(copyFile, { force: true });
    await env.store.delete(key).catch(() => {});
  }
  return [
    `breakdown — (b)'s stages alone on the same ${int(rows)} rows, each in its own process ` +
      `(re-upload for it: ${fixed(up.seconds)} s, not counted); note = the COPY backend's time by wait event:`,
    table(['stage', '>s', '>rows/s', '>(b) s / stage s', ...COST_HEADERS, 'note'], lines),
  ].join('\n');
}

async function runSize(env: Env, rows: number, opts: { breakdown: 'auto' | 'on' | 'off'; repeat: number; baseline: boolean }): Promise<SizeResult> {
  const file = path.join(env.tmp, `events-${rows}.csv`);
  try {
    const t0 = process.hrtime.bigint();
    const bytes = await generate(rows, file);
    const generateSeconds = seconds(t0);

    const a: Measured[] = [];
    const b: ServiceRun[] = [];
    const uploadSeconds: number[] = [];
    for (let i = 0; i < opts.repeat; i++) {
      if (opts.baseline) a.push(await runBaseline(env, file, rows, bytes));
      const { uploadId, uploadSeconds: up } = await prepareUpload(env, file, bytes);
      uploadSeconds.push(up);
      // The local file is needed again only for another repetition or the breakdown.
      if (i === opts.repeat - 1 && opts.breakdown === 'off') await rm(file, { force: true });
      b.push(await runService(env, rows, bytes, uploadId));
    }

    let breakdown: string | null = null;
    const ratio = a.length ? best(a).seconds / best(b).seconds : 1;
    if (opts.breakdown === 'on' || (opts.breakdown === 'auto' && ratio < TARGET_RATIO)) {
      breakdown = await runBreakdown(env, file, rows, bytes, best(b));
    }
    return { rows, bytes, generateSeconds, a, uploadSeconds, b, breakdown };
  } finally {
    await rm(file, { force: true });
  }
}

function report(label: string, r: SizeResult, embeddedS3: boolean): string {
  const out: string[] = [];
  out.push(`== ${label}: ${int(r.rows)} rows, ${mbytes(r.bytes)} MB ==`);
  out.push(
    `generate file ${fixed(r.generateSeconds)} s | upload into S3 (ObjectStore.putStream; a separate stage, not in (b)) ` +
      r.uploadSeconds.map((s) => `${fixed(s)} s = ${fixed(r.bytes / 1e6 / s, 1)} MB/s`).join(', '),
  );
  const many = r.b.length > 1;
  const rows: string[][] = [];
  const row = (name: string, m: Measured) => [
    name,
    int(m.rows),
    mbytes(m.bytes),
    fixed(m.seconds),
    int(m.rows / m.seconds),
    fixed(m.bytes / 1e6 / m.seconds, 1),
    ...costCells(m, embeddedS3),
  ];
  const n = Math.max(r.a.length, r.b.length);
  for (let i = 0; i < n; i++) {
    const tag = many ? ` #${i + 1}` : '';
    if (r.a[i]) rows.push(row(`(a) psql \\copy (baseline)${tag}`, r.a[i]!));
    if (r.b[i]) rows.push(row(`(b) process-upload task${tag}`, r.b[i]!));
  }
  out.push(table(['run', '>rows', '>MB', '>s', '>rows/s', '>MB/s', ...COST_HEADERS], rows));
  const bb = best(r.b);
  const t = bb.task;
  const noisy = [
    ...r.a.map((m, i) => [`(a)${many ? ` #${i + 1}` : ''}`, m] as const),
    ...r.b.map((m, i) => [`(b)${many ? ` #${i + 1}` : ''}`, m] as const),
  ].filter(([, m]) => isNoisy(m));
  for (const [name, m] of noisy) {
    out.push(
      `NOISY ${name}: other processes used ${fixed(m.otherCpu)} CPU-s during its ${fixed(m.seconds)} s ` +
        `(${fixed(m.otherCpu / m.seconds)} of a core) — the machine was shared; rerun (or --repeat N) before trusting the ratio`,
    );
  }
  out.push(`(b) timed inside the child from task start to COMMIT (${fixed(t.commitSeconds)} s); whole task incl. object delete ${fixed(t.taskSeconds)} s`);
  for (const [i, m] of r.a.entries()) out.push(`(a)${many ? ` #${i + 1}` : ''} COPY backend time: ${m.waits}`);
  for (const [i, m] of r.b.entries()) out.push(`(b)${many ? ` #${i + 1}` : ''} COPY backend time: ${m.waits}`);
  if (r.a.length) {
    const ratio = best(r.a).seconds / bb.seconds;
    out.push(
      `ratio (b)/(a) rows/s${many ? ` (best of ${r.b.length} each)` : ''}: ${fixed(ratio)}   ` +
        `target ≥ ${TARGET_RATIO.toFixed(2)} with validation on   ${verdict(ratio >= TARGET_RATIO)}`,
    );
  }
  const peak = Math.max(...r.b.map((x) => x.task.hwmKb ?? Infinity));
  out.push(`peak RSS (b): ${mib(peak)} (child VmHWM${many ? ', highest of the runs' : ''})   target ≤ ${mib(TARGET_RSS_KB)}   ${verdict(peak <= TARGET_RSS_KB)}`);
  for (const x of r.b) {
    const k = x.task;
    out.push(
      `   RSS before the task ${mib(k.idleRssKb)}; max VmRSS sampled every 50 ms ${mib(x.sampledPeakKb)} (${x.samples} samples); ` +
        `peak heapUsed ${fixed(k.peakHeapUsed / 2 ** 20, 0)} MB, heapTotal ${fixed(k.peakHeapTotal / 2 ** 20, 0)} MB, ` +
        `external ${fixed(k.peakExternal / 2 ** 20, 0)} MB, arrayBuffers ${fixed(k.peakArrayBuffers / 2 ** 20, 0)} MB`,
    );
  }
  out.push(`verified: ${bb.verified}; validation on (every row checked by the task's CSV→COPY transform)`);
  if (r.breakdown) out.push('', r.breakdown);
  return out.join('\n');
}

/** More than a quarter of a core used by others (beyond PG's own background work, which is small). */
const isNoisy = (m: Measured): boolean => m.otherCpu > 0.25 * m.seconds;

const peakOf = (r: SizeResult): number => Math.max(...r.b.map((x) => x.task.hwmKb ?? Infinity));

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  if (opts.dataset === 'wide') {
    // Its database, s3rver and temp folder are registered with the shared cleanup (bench/lib/cleanup.ts).
    onCleanup('wide dataset bench', () => cleanupShared());
    await benchWideDataset({ rows: opts.rows, repeat: opts.repeat, verbose: opts.verbose });
    return;
  }
  const config = loadConfig();
  const adminUrl = config.databaseUrl ?? DEFAULT_ADMIN_URL;

  const tmp = await mkdtemp(path.join(os.tmpdir(), 'stream-api-bench-'));
  onCleanup('delete temp dir', () => rm(tmp, { recursive: true, force: true }));

  const admin = new pg.Pool({ connectionString: adminUrl, max: 2, application_name: 'stream-api-bench-admin' });
  admin.on('error', () => {});
  onCleanup('close admin pool', () => admin.end());

  const dbName = randomDatabaseName();
  await adminExec(adminUrl, `CREATE DATABASE ${dbName}`);
  onCleanup(`drop database ${dbName}`, () => dropBenchDatabase(adminUrl, dbName));
  const benchUrl = withDatabase(adminUrl, dbName);
  const pool = createPool(benchUrl, 'stream-api-bench', 4);
  const db = createDb(pool);
  onCleanup('close bench pool', () => db.destroy());
  await migrate(pool);

  let endpoint = config.s3.endpoint;
  let s3Label: string;
  if (endpoint) {
    s3Label = `S3_ENDPOINT ${endpoint} (an S3 server on this machine counts in "CPU other")`;
  } else {
    const s3 = await startEmbeddedS3({ dataDir: tmp, port: 0, bucket: config.s3.bucket });
    onCleanup('stop embedded s3rver', () => s3.stop());
    endpoint = s3.endpoint;
    s3Label = 'embedded s3rver (runs inside this bench process, on the same 2 cores: column "CPU s3rver")';
  }
  const s3: ObjectStoreOptions = { ...config.s3, endpoint };
  const store = new ObjectStore(s3);
  onCleanup('close S3 client', async () => store.destroy());
  await store.ensureBucket();
  const tenant = await ensureTenant(db, 'bench');

  const { rows: ver } = await admin.query<{ v: string }>("SELECT current_setting('server_version') AS v");
  const env: Env = { adminUrl, benchUrl, pool, admin, s3, embeddedS3: !config.s3.endpoint, store, tenantId: tenant.id, tmp, opts };

  console.log(
    `stream-api ingest bench — node ${process.version}, PostgreSQL ${ver[0]!.v}, ${os.cpus().length} CPUs, ` +
      `database ${dbName} (fresh, migrated)`,
  );
  console.log(`S3: ${s3Label}; temp dir ${tmp} (${await diskFree(tmp)})`);
  // Peak disk use: the CSV + the S3 copy (+ its multipart parts while uploading) + table and WAL.
  const largest = (opts.skipBig ? opts.rows : Math.max(opts.rows, opts.big)) * 200;
  const free = await statfs(tmp);
  if (free.bavail * free.bsize < 5 * largest) {
    console.log(`WARNING: ${await diskFree(tmp)} in ${tmp}; the largest run may need ~${((5 * largest) / 1e9).toFixed(1)} GB`);
  }
  console.log(
    `(a) = psql \\copy (FORMAT csv, HEADER) into a table LIKE webhook_events INCLUDING ALL (same defaults, unique index)\n` +
      `(b) = the process-upload task in a child process: S3 GetObject → CSV→COPY transform (full validation) → COPY → COMMIT with status\n` +
      `CPU columns: seconds of CPU during the stage — client (psql / the node child), its PG backend(s), the s3rver, and ` +
      `everything else on the machine (PG walwriter/checkpointer, other users: noise); busy = machine CPU / (wall × cores)\n`,
  );

  const main = await runSize(env, opts.rows, { breakdown: opts.breakdown, repeat: opts.repeat, baseline: true });
  console.log(report('main run', main, env.embeddedS3));

  let big: SizeResult | null = null;
  if (!opts.skipBig) {
    console.log('');
    big = await runSize(env, opts.big, { breakdown: 'off', repeat: 1, baseline: !opts.bigSkipBaseline });
    console.log(report('big run (flat memory)', big, env.embeddedS3));
  }

  // Summary of the targets.
  console.log('\n== targets ==');
  const ratio = best(main.a).seconds / best(main.b).seconds;
  const lines = [
    ['(b)/(a) rows/s, validation on', `${fixed(ratio)} (${int(opts.rows)} rows)`, `≥ ${TARGET_RATIO.toFixed(2)}`, verdict(ratio >= TARGET_RATIO)],
    ['peak RSS of (b)', `${mib(peakOf(main))} (${int(opts.rows)} rows)`, `≤ ${mib(TARGET_RSS_KB)}`, verdict(peakOf(main) <= TARGET_RSS_KB)],
  ];
  if (big) {
    if (big.a.length) {
      const bigRatio = best(big.a).seconds / best(big.b).seconds;
      lines.push(['(b)/(a) rows/s, big run', `${fixed(bigRatio)} (${int(opts.big)} rows)`, `≥ ${TARGET_RATIO.toFixed(2)}`, verdict(bigRatio >= TARGET_RATIO)]);
    }
    lines.push(['peak RSS of (b), big run', `${mib(peakOf(big))} (${int(opts.big)} rows)`, `≤ ${mib(TARGET_RSS_KB)}`, verdict(peakOf(big) <= TARGET_RSS_KB)]);
    const growth = peakOf(big) / peakOf(main);
    lines.push([
      `RSS(${int(opts.big)}) / RSS(${int(opts.rows)})`,
      fixed(growth),
      `within ±${TARGET_RSS_GROWTH * 100}% (0.90–1.10)`,
      verdict(Math.abs(growth - 1) <= TARGET_RSS_GROWTH),
    ]);
  }
  console.log(table(['what', 'measured', 'target', 'verdict'], lines));
  const noisy = [main, ...(big ? [big] : [])].flatMap((r) => [...r.a, ...r.b]).filter(isNoisy);
  if (noisy.length) {
    console.log(`NOISY: ${noisy.length} timed stage(s) ran while other processes were busy (see NOISY lines above); throughput verdicts may be off`);
  }
  console.log(`\ncleaned up: database ${dbName} dropped, temp dir (file, s3rver data) deleted; ${await diskFree(os.tmpdir())} in ${os.tmpdir()}`);
}

let exitCode = 0;
try {
  await main();
} catch (err) {
  // After Ctrl-C the stage that was running fails because its process was killed: not news.
  if (signals === 0) console.error(`bench failed: ${(err as Error).stack ?? err}`);
  exitCode = 1;
} finally {
  await cleanup();
}
process.exit(exitCode);
