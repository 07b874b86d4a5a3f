// Child process of bench/ingest.ts for the breakdown: each stage of (b) run alone, in its own
// process, on the same bytes, so the parent can compare their times (and CPU) with the full task.
//   s3-read        GetObject stream → discard
//   s3-transform   GetObject stream → CSV→COPY transform → discard      (everything but Postgres)
//   file-transform local file (64 KiB reads) → transform → discard, or → `out` file (COPY input)
//   copy-file      a file already in COPY format (writeBytes reads, default 1 MiB, as the transform's
//                  chunks) → CopySink (pg-copy-streams) → COMMIT
// Input (argv[2], JSON): StageInput. Output: one `RESULT {json}` line (StageResult).
import { createReadStream, createWriteStream } from 'node:fs';
import { Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { randomUUID } from 'node:crypto';
import { createPool } from '../../src/db/pool.ts';
import { copyStatement, createCopyTransform } from '../../src/ingest/csv/index.ts';
import { CopySink } from '../../src/ingest/copy-sink.ts';
import { webhookEvents } from '../../src/ingest/datasets/index.ts';
import { ObjectStore, type ObjectStoreOptions } from '../../src/storage/object-store.ts';
import { mark, sendResult } from './child.ts';
import { statusKb } from './proc.ts';

export type StageInput =
  | { stage: 's3-read' | 's3-transform'; s3: ObjectStoreOptions; key: string }
  | { stage: 'file-transform'; file: string; out?: string }
  | { stage: 'copy-file'; file: string; databaseUrl: string; applicationName: string; writeBytes?: number };

export interface StageResult {
  seconds: number;
  bytesIn: number;
  rows: number | null;
  rejected: number | null;
  bytesOut: number | null;
  cpuUserSeconds: number;
  cpuSystemSeconds: number;
  hwmKb: number | null;
}

const input = JSON.parse(process.argv[2] ?? '{}') as StageInput;

function discard(): Writable & { bytes: number } {
  const w = new Writable({
    highWaterMark: 1,
    write(chunk: Buffer, _enc, cb) {
      w.bytes += chunk.length;
      cb();
    },
  }) as Writable & { bytes: number };
  w.bytes = 0;
  return w;
}

function transform() {
  return createCopyTransform(webhookEvents, { onHeader: () => {}, onReject: () => {} });
}

let t0 = process.hrtime.bigint();
let cpu0 = process.cpuUsage();
const start = () => {
  mark('start');
  t0 = process.hrtime.bigint();
  cpu0 = process.cpuUsage();
};
let out: Omit<StageResult, 'seconds' | 'cpuUserSeconds' | 'cpuSystemSeconds' | 'hwmKb'>;

if (input.stage === 's3-read' || input.stage === 's3-transform') {
  const store = new ObjectStore(input.s3);
  await store.ping(); // warm client, as in the task's worker
  start();
  const { body } = await store.getStream(input.key);
  if (input.stage === 's3-read') {
    const sink = discard();
    await pipeline(body as Readable, sink);
    out = { bytesIn: sink.bytes, rows: null, rejected: null, bytesOut: null };
  } else {
    const t = transform();
    const sink = discard();
    await pipeline(body as Readable, t, sink);
    out = { bytesIn: t.stats.bytesIn, rows: t.stats.rowsAccepted, rejected: t.stats.rowsRejected, bytesOut: sink.bytes };
  }
  store.destroy();
} else if (input.stage === 'file-transform') {
  const t = transform();
  const sink = input.out ? createWriteStream(input.out) : discard();
  start();
  await pipeline(createReadStream(input.file, { highWaterMark: 64 * 1024 }), t, sink);
  out = { bytesIn: t.stats.bytesIn, rows: t.stats.rowsAccepted, rejected: t.stats.rowsRejected, bytesOut: t.stats.bytesOut };
} else if (input.stage === 'copy-file') {
  // The COPY the task issues (same statement, same sink class, same transaction shape), fed from
  // a file that already holds the transform's output.
  const pool = createPool(input.databaseUrl, input.applicationName, 2);
  const client = await pool.connect();
  const header = { columns: webhookEvents.columns.map((c) => c.name) };
  start();
  await client.query('BEGIN');
  await client.query(`SELECT set_config('app.upload_id', $1, true)`, [randomUUID()]);
  const sink = new CopySink(client, () => copyStatement(webhookEvents, header));
  const source = createReadStream(input.file, { highWaterMark: input.writeBytes ?? 1 << 20 });
  await pipeline(source, sink);
  await client.query('COMMIT');
  out = { bytesIn: source.bytesRead, rows: sink.rowCount, rejected: null, bytesOut: null };
  client.release();
  await pool.end();
} else {
  throw new Error(`unknown stage ${JSON.stringify(input)}`);
}

const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
const cpu = process.cpuUsage(cpu0);
mark('end');
sendResult({
  ...out,
  seconds,
  cpuUserSeconds: cpu.user / 1e6,
  cpuSystemSeconds: cpu.system / 1e6,
  hwmKb: statusKb('self', 'VmHWM'),
} satisfies StageResult);
