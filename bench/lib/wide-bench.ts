// `npm run bench -- --dataset wide`: a tenant's dataset of 20 mixed columns (lib/wide-dataset.ts), N rows,
// in one run on a throw-away database (DATABASE_URL's server) and the embedded s3rver (or S3_ENDPOINT):
//   append   service  the real process-upload task in a child process (S3 GetObject → CSV→COPY transform
//                     with full validation → COPY → COMMIT with the status), as the worker runs it
//            (a)      psql \copy of the same file into an identical table (LIKE the dataset's INCLUDING ALL:
//                     NOT NULLs, defaults, CHECKs, the BRIN index on upload_id)
//            (b)      psql \copy into a plain table of the file's columns (no index, constraint or default)
//   upsert   service  mode=upsert of the file into the keyed dataset already holding half of its keys
//            psql     \copy into a staging table + the service's INSERT … SELECT … ON CONFLICT (key) DO
//                     UPDATE (src/ingest/load-modes.ts), one transaction, into an identical seeded table
// and prints seconds, rows/s, the ratios and the worker's peak RSS (VmHWM). Temp files under os.tmpdir().
import { spawn } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import type pg from 'pg';
import { loadConfig } from '../../src/config.ts';
import { applyDataset } from '../../src/datasets/datasets.repository.ts';
import { sqlType } from '../../src/datasets/ddl.ts';
import { normaliseDefinition } from '../../src/datasets/definition.ts';
import { tenantSchema } from '../../src/datasets/identifiers.ts';
import { startEmbeddedS3 } from '../../src/storage/embedded-s3.ts';
import { ObjectStore, objectKeyFor, type ObjectStoreOptions } from '../../src/storage/object-store.ts';
import { runHelper, trackChild } from './child.ts';
import { onCleanup } from './cleanup.ts';
import { createBenchDatabase, DEFAULT_ADMIN_URL } from './db.ts';
import { fixed, int, mbytes, mib, table, verdict } from './format.ts';
import type { RunTaskInput, RunTaskResult } from './run-task.ts';
import { WIDE, WIDE_COLUMNS, writeWideFile } from './wide-dataset.ts';

const TARGET_VS_IDENTICAL = 0.8;
const TARGET_VS_PLAIN = 1.0;
const TARGET_RSS_KB = 256 * 1024;
const APP_TASK = 'stream-api-bench-task';

interface Run {
  seconds: number;
  rows: number;
}

const q = (name: string) => `"${name}"`;

/** psql with the commands in one transaction (-1); app.upload_id set for the dataset table's default. Wall seconds. */
async function psql(databaseUrl: string, commands: string[]): Promise<number> {
  const args = ['-X', '-q', '-1', '-v', 'ON_ERROR_STOP=1', '-d', databaseUrl, ...commands.flatMap((c) => ['-c', c])];
  const t0 = process.hrtime.bigint();
  const child = spawn('psql', args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, PGOPTIONS: `-c app.upload_id=${randomUUID()}` } });
  trackChild(child);
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (err += s));
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  if (code !== 0) throw new Error(`psql exited with ${code}: ${err}`);
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

const copyFrom = (target: string, file: string) => `\\copy ${target} (${WIDE_COLUMNS.join(',')}) FROM '${file}' WITH (FORMAT csv, HEADER)`;

/** A table shaped like `like`, line_number fed by a sequence (the file has none; the service numbers lines). */
async function identicalTable(pool: pg.Pool, name: string, like: string): Promise<void> {
  await pool.query(`CREATE TABLE ${name} (LIKE ${like} INCLUDING ALL);
    CREATE SEQUENCE ${name}_line START 2 CACHE 1000;
    ALTER TABLE ${name} ALTER COLUMN line_number SET DEFAULT nextval('${name}_line')`);
}

/**
 * Runs the wide dataset bench on `rows` rows (the append comparison `repeat` times, interleaved) and prints its tables and ratios (a measurement: a missed
 * target prints MISSED, it does not throw). Throws when a load does not store exactly the file's rows.
 * Everything it creates is undone by bench/lib/cleanup.ts.
 */
export async function benchWideDataset(opts: { rows: number; repeat: number; verbose: boolean }): Promise<void> {
  const { rows } = opts;
  const half = Math.floor(rows / 2);
  const config = loadConfig();
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'stream-api-bench-wide-'));
  onCleanup(() => rm(tmp, { recursive: true, force: true }));
  const bench = await createBenchDatabase(config.databaseUrl ?? DEFAULT_ADMIN_URL, 'stream-api-bench', 'bench');
  const { pool, db, tenantId } = bench;
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

  const schema = tenantSchema(tenantId);
  await applyDataset(db, tenantId, normaliseDefinition(WIDE), { createOnly: true });
  await applyDataset(db, tenantId, normaliseDefinition({ ...WIDE, name: 'wide_keyed', key: ['order_id'] }), { createOnly: true });
  const wide = `${q(schema)}.wide`;
  const keyed = `${q(schema)}.wide_keyed`;

  const file = path.join(tmp, 'wide.csv'); // keys 1..N
  const seed = path.join(tmp, 'wide-seed.csv'); // keys 1..N/2, other values
  const t0 = process.hrtime.bigint();
  await writeWideFile(file, rows);
  await writeWideFile(seed, half, 1, 1);
  const bytes = (await stat(file)).size;
  console.log(
    `wide dataset bench — ${int(rows)} rows × 20 columns (${mbytes(bytes)} MB), database ${bench.name}, ` +
      `S3 ${config.s3.endpoint ? config.s3.endpoint : 'embedded s3rver (in this process)'}; files written in ${fixed(Number(process.hrtime.bigint() - t0) / 1e9)} s\n`,
  );

  const service = async (dataset: string, mode: 'append' | 'upsert'): Promise<Run & { task: RunTaskResult; state: Record<string, number | string> }> => {
    const uploadId = randomUUID();
    const key = objectKeyFor(tenantId, uploadId);
    const hash = createHash('sha256');
    const tap = new PassThrough().on('data', (c: Buffer) => hash.update(c));
    createReadStream(file, { highWaterMark: 1 << 20 }).on('error', (e) => tap.destroy(e)).pipe(tap);
    await store.putStream(key, tap);
    await pool.query(
      `INSERT INTO uploads (id, tenant_id, dataset, mode, filename, size_bytes, sha256, object_key) VALUES ($1, $2, $3, $4, 'wide.csv', $5, $6, $7)`,
      [uploadId, tenantId, dataset, mode, bytes, hash.digest('hex'), key],
    );
    await pool.query('CHECKPOINT');
    const input: RunTaskInput = { databaseUrl: bench.databaseUrl, applicationName: APP_TASK, s3, uploadId, logLevel: opts.verbose ? 'info' : 'warn' };
    const task = await runHelper<RunTaskResult>('./run-task.ts', input, { verbose: opts.verbose }).done;
    const { rows: st } = await pool.query(
      'SELECT status, error, rows_processed::int, rows_failed::int, rows_inserted::int, rows_updated::int FROM uploads WHERE id = $1',
      [uploadId],
    );
    if (st[0].status !== 'completed' || st[0].rows_processed !== rows) throw new Error(`service ${mode} did not load the file: ${JSON.stringify(st[0])}`);
    return { seconds: task.commitSeconds ?? task.taskSeconds, rows, task, state: st[0] };
  };
  const count = async (t: string) => Number((await pool.query(`SELECT count(*) AS n FROM ${t}`)).rows[0].n);

  // ---- append: (b) plain, (a) identical, the service — each into an empty table, after a checkpoint
  const cols = normaliseDefinition(WIDE).columns.map((c) => `${q(c.name)} ${sqlType(c)}`);
  await pool.query(`CREATE TABLE bench_plain (${cols.join(', ')})`);
  await identicalTable(pool, 'bench_identical', wide);
  const timed = async (target: string, commands: string[]): Promise<Run> => {
    await pool.query('CHECKPOINT');
    const seconds = await psql(bench.databaseUrl, commands);
    if ((await count(target)) !== rows) throw new Error(`${target}: psql did not load ${rows} rows`);
    return { seconds, rows };
  };
  // --repeat N: the three interleaved N times, each into an empty table; the best of each is compared.
  const runs: { plain: Run; identical: Run; append: Run & { task: RunTaskResult } }[] = [];
  for (let i = 0; i < opts.repeat; i++) {
    await pool.query(`TRUNCATE bench_plain, bench_identical, ${wide}`);
    const plain = await timed('bench_plain', [copyFrom('bench_plain', file)]);
    const identical = await timed('bench_identical', [copyFrom('bench_identical', file)]);
    const append = await service('wide', 'append');
    if ((await count(wide)) !== rows) throw new Error('service append: row count differs');
    runs.push({ plain, identical, append });
  }
  const best = <K extends keyof (typeof runs)[number]>(k: K) => runs.map((r) => r[k]).reduce((x, y) => (y.seconds < x.seconds ? y : x));
  const plain = best('plain');
  const identical = best('identical');
  const append = best('append');
  await pool.query('DROP TABLE bench_plain, bench_identical; DROP SEQUENCE IF EXISTS bench_identical_line');

  // ---- upsert: the keyed dataset and an identical table, both seeded with keys 1..N/2
  await identicalTable(pool, 'bench_upsert', keyed);
  await pool.query(`CREATE TABLE bench_seed (LIKE bench_upsert INCLUDING DEFAULTS)`);
  await psql(bench.databaseUrl, [copyFrom('bench_seed', seed)]);
  const all = ['upload_id', 'line_number', ...WIDE_COLUMNS].map(q).join(', ');
  for (const t of [keyed, 'bench_upsert']) await pool.query(`INSERT INTO ${t} (${all}) SELECT ${all} FROM bench_seed`);
  await pool.query('DROP TABLE bench_seed');
  for (const t of [keyed, 'bench_upsert']) await pool.query(`VACUUM ANALYZE ${t}`);
  // The service's statement (load-modes.ts mergeStaged): same SET list, same RETURNING count.
  const written = ['upload_id', 'line_number', ...WIDE_COLUMNS].map(q).join(', ');
  const updates = ['upload_id', 'line_number', ...WIDE_COLUMNS.filter((c) => c !== 'order_id')].map((c) => `${q(c)} = EXCLUDED.${q(c)}`).join(', ');
  const upsertPsql = await timed('bench_upsert', [
    `CREATE TEMP TABLE upload_stage (LIKE bench_upsert INCLUDING DEFAULTS) ON COMMIT DROP`,
    copyFrom('upload_stage', file),
    `WITH written AS (INSERT INTO bench_upsert (${written}) SELECT ${written} FROM upload_stage
       ON CONFLICT ("order_id") DO UPDATE SET ${updates} RETURNING (xmax = 0) AS inserted)
     SELECT count(*) FILTER (WHERE inserted) AS inserted, count(*) FILTER (WHERE NOT inserted) AS updated FROM written`,
  ]);
  const upsert = await service('wide_keyed', 'upsert');
  if (upsert.state.rows_inserted !== rows - half || upsert.state.rows_updated !== half || (await count(keyed)) !== rows) {
    throw new Error(`service upsert: ${JSON.stringify(upsert.state)}`);
  }

  // ---- report
  const line = (name: string, r: Run) => [name, fixed(r.seconds), int(r.rows / r.seconds), fixed(bytes / 1e6 / r.seconds, 1)];
  const many = opts.repeat > 1;
  console.log(table([`append (empty table)${many ? `, ${opts.repeat} interleaved runs` : ''}`, '>s', '>rows/s', '>MB/s'], runs.flatMap((r, i) => {
    const tag = many ? ` #${i + 1}` : '';
    return [
      line(`(b) psql \\copy → plain table (file columns only)${tag}`, r.plain),
      line(`(a) psql \\copy → identical table (dataset shape)${tag}`, r.identical),
      line(`service: upload → worker → COPY${tag}`, r.append),
    ];
  })));
  if (many) console.log('ratios below: the best run of each');
  const vsIdentical = identical.seconds / append.seconds;
  const vsPlain = plain.seconds / append.seconds;
  console.log(`\nratio service / (a) identical rows/s: ${fixed(vsIdentical)}   target ≥ ${fixed(TARGET_VS_IDENTICAL)}   ${verdict(vsIdentical >= TARGET_VS_IDENTICAL)}`);
  console.log(`ratio service / (b) plain rows/s:     ${fixed(vsPlain)}   target ≥ ${fixed(TARGET_VS_PLAIN)}   ${verdict(vsPlain >= TARGET_VS_PLAIN)}`);
  const peak = Math.max(...runs.map((r) => r.append.task.hwmKb ?? Infinity), upsert.task.hwmKb ?? Infinity);
  console.log(`peak RSS of the worker (VmHWM, append / upsert): ${mib(Math.max(...runs.map((r) => r.append.task.hwmKb ?? Infinity)))} / ${mib(upsert.task.hwmKb)}   target ≤ ${mib(TARGET_RSS_KB)}   ${verdict(peak <= TARGET_RSS_KB)}\n`);
  console.log(table([`upsert (${int(rows - half)} new, ${int(half)} updated keys)`, '>s', '>rows/s', '>MB/s'], [
    line('psql \\copy → staging + INSERT … ON CONFLICT (key) DO UPDATE', upsertPsql),
    line('service: mode=upsert', upsert),
  ]));
  console.log(`\nratio service / psql upsert rows/s: ${fixed(upsertPsql.seconds / upsert.seconds)}`);
}
