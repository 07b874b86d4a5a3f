// Child process of bench/ingest.ts: runs the real `process-upload` task once, exactly as the worker
// builds it (createProcessUploadTask with a pg pool, an ObjectStore and a pino logger), with a
// job-helpers object shaped like graphile-worker's (first attempt of five), then exits so the
// parent can read this process's peak resident memory.
//
// Input (argv[2], JSON): RunTaskInput. Output: one `RESULT {json}` line (RunTaskResult).
import { Logger as GraphileLogger, type Job, type JobHelpers } from 'graphile-worker';
import type pg from 'pg';
import { loadConfig } from '../../src/config.ts';
import { createPool } from '../../src/db/pool.ts';
import { createProcessUploadTask } from '../../src/ingest/process-upload.ts';
import { createLogger } from '../../src/logger.ts';
import { ObjectStore, type ObjectStoreOptions } from '../../src/storage/object-store.ts';
import { PROCESS_UPLOAD_TASK } from '../../src/uploads/uploads.repository.ts';
import { mark, sendResult } from './child.ts';
import { statusKb } from './proc.ts';

export interface RunTaskInput {
  databaseUrl: string;
  applicationName: string;
  s3: ObjectStoreOptions;
  uploadId: string;
  logLevel: string;
}

export interface RunTaskResult {
  /** Task start → the moment the task deletes the processed object (it does so right after COMMIT). */
  commitSeconds: number | null;
  /** Task start → the task's promise settled (includes the object delete + bookkeeping after commit). */
  taskSeconds: number;
  cpuUserSeconds: number;
  cpuSystemSeconds: number;
  /** Resident memory after imports and a warm pool/S3 client, just before the task starts (KiB). */
  idleRssKb: number | null;
  /** The kernel's resident peak for this process (KiB), read after the task. */
  hwmKb: number | null;
  /** Highest values seen by process.memoryUsage() sampled every 250 ms during the task (bytes). */
  peakHeapUsed: number;
  peakHeapTotal: number;
  peakExternal: number;
  peakArrayBuffers: number;
}

const input = JSON.parse(process.argv[2] ?? '{}') as RunTaskInput;
const logger = createLogger(input.logLevel, 'stderr');
// Same pool shape as the runtime's (openRuntime: max 20), named so the parent can find its backends.
const pool: pg.Pool = createPool(input.databaseUrl, input.applicationName, 20);

let commitAt: bigint | null = null;
/** The real ObjectStore; only observes delete(), which the task calls right after its COMMIT. */
class ObservedStore extends ObjectStore {
  override async delete(key: string): Promise<void> {
    commitAt ??= process.hrtime.bigint();
    return super.delete(key);
  }
}
const store = new ObservedStore(input.s3);

// The worker's own limits for gzip files (GZIP_MAX_RATIO, GZIP_MAX_UNCOMPRESSED_BYTES: defaults unless set).
const task = createProcessUploadTask({ pool, store, logger, gzip: loadConfig().gzip });

const payload = { uploadId: input.uploadId };
const now = new Date();
const job: Job = {
  id: '1',
  job_queue_id: null,
  task_id: 1,
  task_identifier: PROCESS_UPLOAD_TASK,
  payload,
  priority: 0,
  run_at: now,
  attempts: 1, // graphile-worker increments attempts when it locks the job: the first run sees 1
  max_attempts: 5,
  last_error: null,
  created_at: now,
  updated_at: now,
  key: `upload:${input.uploadId}`,
  revision: 0,
  locked_at: now,
  locked_by: 'bench',
  flags: null,
  is_available: false,
};
const abort = new AbortController();
const helpers: JobHelpers = {
  logger: new GraphileLogger((scope) => (level, message, meta) => {
    const line = { scope, ...meta };
    if (level === 'error') logger.error(line, message);
    else if (level === 'warning') logger.warn(line, message);
    else logger.info(line, message);
  }),
  job,
  getQueueName: () => null,
  query: (text, values) => pool.query(text, values),
  withPgClient: async (callback) => {
    const client = await pool.connect();
    try {
      return await callback(client);
    } finally {
      client.release();
    }
  },
  addJob: () => Promise.reject(new Error('addJob is not available in the bench')),
  addJobs: () => Promise.reject(new Error('addJobs is not available in the bench')),
  abortSignal: abort.signal,
  abortPromise: new Promise<void>(() => {}),
};

// A running worker has a warm pool and S3 client; do the same so connection setup is not timed.
await pool.query('SELECT 1');
await store.ping();

const peaks = { heapUsed: 0, heapTotal: 0, external: 0, arrayBuffers: 0 };
const sampleHeap = () => {
  const m = process.memoryUsage();
  peaks.heapUsed = Math.max(peaks.heapUsed, m.heapUsed);
  peaks.heapTotal = Math.max(peaks.heapTotal, m.heapTotal);
  peaks.external = Math.max(peaks.external, m.external);
  peaks.arrayBuffers = Math.max(peaks.arrayBuffers, m.arrayBuffers);
};
const heapTimer = setInterval(sampleHeap, 250);

const idleRssKb = statusKb('self', 'VmRSS');
const cpu0 = process.cpuUsage();
mark('start');
const t0 = process.hrtime.bigint();
try {
  await task(payload, helpers);
} finally {
  clearInterval(heapTimer);
}
const t1 = process.hrtime.bigint();
mark('end');
const cpu = process.cpuUsage(cpu0);
sampleHeap();
const hwmKb = statusKb('self', 'VmHWM');

store.destroy();
await pool.end();

const result: RunTaskResult = {
  commitSeconds: commitAt === null ? null : Number(commitAt - t0) / 1e9,
  taskSeconds: Number(t1 - t0) / 1e9,
  cpuUserSeconds: cpu.user / 1e6,
  cpuSystemSeconds: cpu.system / 1e6,
  idleRssKb,
  hwmKb,
  peakHeapUsed: peaks.heapUsed,
  peakHeapTotal: peaks.heapTotal,
  peakExternal: peaks.external,
  peakArrayBuffers: peaks.arrayBuffers,
};
sendResult(result);
