// Upload benchmark, one run: a file made by the product's generator goes into object storage by each
// path a client can take, and each is compared with the AWS SDK's own uploader sending the same file
// to the same store in the same run:
//   direct SDK   @aws-sdk/lib-storage Upload (its defaults: 5 MiB parts, 4 at once) from this process
//                straight to the store: the baseline
//   multipart    POST /upload through the service: the API (`serve --role api`) in a child process,
//                whose resident memory and CPU are sampled while it receives
//   tus          tus-js-client through /files/ of the same API: POST, then one PATCH with the whole file
//                (its default chunkSize), or PATCHes of --tus-chunk-mib each
//   direct       POST /uploads/direct, every part PUT to its presigned URL (DIRECT_PARTS_AT_ONCE at a
//                time, as the SDK's uploader), POST /uploads/:id/complete; the API only signs and completes
// The store is an embedded s3rver in a process of its own, or S3_ENDPOINT when set. Every stored object
// is checked: its size, and its sha256 (recorded by the service, or read back for a direct upload).
//
// Usage: npm run bench:upload -- [--mib 1024] [--repeat 1] [--path P]… [--tus-chunk-mib 0]… [--also NAME=V[,…]]… [--verbose]
//   --mib N        file size in MiB (default 1024, or UPLOAD_BENCH_MIB); `--mib 256` for a quick run
//   --repeat N     every path N times, interleaved (direct SDK, multipart, tus, direct, …): a row per run,
//                  each compared with the direct SDK upload of its own round, since this machine's speed drifts
//   --path P       only these of multipart, tus, direct (default all three; the baseline always runs)
//   --tus-chunk-mib N  MiB per tus PATCH (tus-js-client's chunkSize); 0 (default) = the whole file in one
//                  PATCH; given more than once, a tus row for each
//   --also S       one more API process with these settings (e.g. UPLOAD_PARTS_IN_FLIGHT=1, the serial
//                  upload of before) and its multipart row, to compare settings within one run
//   DATABASE_URL   server to use (default postgres://postgres@127.0.0.1:5432/postgres); a database
//                  bench_<random> is created there, migrated, and dropped at the end (also on error)
//   S3_ENDPOINT    use this S3 server (with S3_BUCKET, S3_ACCESS_KEY_ID, …)
//   UPLOAD_PART_SIZE_MIB, UPLOAD_PARTS_IN_FLIGHT, UPLOAD_BUFFER_MIB, DIRECT_UPLOAD_PART_MIB
//                  passed on to the API (its defaults otherwise), to compare settings
// Exits 0 when a target is missed (it is a measurement) and prints MISSED; non-zero only on errors.
import { mkdtemp, rm, statfs } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/config.ts';
import { ObjectStore, objectKeyFor, type ObjectStoreOptions } from '../src/storage/object-store.ts';
import { startApiProcess, type ApiProcess } from './lib/api-process.ts';
import { onCleanup, runBench } from './lib/cleanup.ts';
import { createBenchDatabase, DEFAULT_ADMIN_URL } from './lib/db.ts';
import { generateBytes, generateRows, sha256File } from './lib/files.ts';
import { fixed, mib, table, verdict } from './lib/format.ts';
import { statusKb } from './lib/proc.ts';
import { Sampler } from './lib/sampler.ts';
import { startStoreProcess } from './lib/store-process.ts';
import { directUpload, tusUpload } from './lib/resumable-clients.ts';
import { checkAndDelete } from './lib/upload-check.ts';
import { postMultipart, sdkUpload, type Sent } from './lib/upload-clients.ts';

const TARGET_RATIO = 0.8;
const TARGET_RSS_KB = 256 * 1024;
/** The API's upload settings this bench passes on from its own environment. */
const API_SETTINGS = ['UPLOAD_PART_SIZE_MIB', 'UPLOAD_PARTS_IN_FLIGHT', 'UPLOAD_BUFFER_MIB', 'DIRECT_UPLOAD_PART_MIB'] as const;
/** Presigned part PUTs in flight at once: @aws-sdk/lib-storage's default queueSize, which the baseline uses. */
const DIRECT_PARTS_AT_ONCE = 4;
const PATH_NAMES = ['multipart', 'tus', 'direct'] as const;

const { values } = parseArgs({
  options: {
    mib: { type: 'string', default: process.env.UPLOAD_BENCH_MIB ?? '1024' },
    repeat: { type: 'string', default: '1' },
    path: { type: 'string', multiple: true, default: [...PATH_NAMES] },
    'tus-chunk-mib': { type: 'string', multiple: true, default: ['0'] },
    also: { type: 'string', multiple: true, default: [] },
    verbose: { type: 'boolean', default: false },
  },
});
const count = (name: string, value: unknown, min: number): number => {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min) throw new Error(`--${name} needs an integer ≥ ${min}, got ${String(value)}`);
  return n;
};
const TARGET_BYTES = count('mib', values.mib, 1) * 2 ** 20;
const REPEAT = count('repeat', values.repeat, 1);
const TUS_CHUNK_MIB = values['tus-chunk-mib'].map((v) => count('tus-chunk-mib', v, 0));
const CHOSEN = new Set(values.path.flatMap((p) => p.split(',')));
for (const p of CHOSEN) if (!(PATH_NAMES as readonly string[]).includes(p)) throw new Error(`--path ${p}: one of ${PATH_NAMES.join(', ')}`);
const ALSO = values.also.map((spec) => {
  const settings = Object.fromEntries(spec.split(',').map((kv) => kv.split('=', 2).map((x) => x.trim())));
  for (const [k, v] of Object.entries(settings)) {
    if (!(API_SETTINGS as readonly string[]).includes(k) || !v) throw new Error(`--also ${spec}: give NAME=VALUE of ${API_SETTINGS.join(', ')}`);
  }
  return settings as Record<string, string>;
});

interface Ctx {
  file: string;
  size: number;
  s3: ObjectStoreOptions;
  apiKey: string;
  tenantId: string;
}

/** One API process and the settings it was given beyond the bench's own. */
interface Api {
  settings: Record<string, string>;
  proc: ApiProcess;
}

/** One way into storage; `baseline` marks the path the others are compared with. */
interface UploadPath {
  name: string;
  baseline?: true;
  /** the API process the bytes pass through (its memory then counts against the target), if any */
  api: Api | null;
  send(ctx: Ctx): Promise<Sent>;
}

const describeSettings = (settings: Record<string, string>) =>
  Object.keys(settings).length ? Object.entries(settings).map(([k, v]) => `${k}=${v}`).join(' ') : 'defaults';

function paths(apis: Api[]): UploadPath[] {
  const api = apis[0]!;
  return [
    { name: 'direct SDK (lib-storage Upload)', baseline: true, api: null, send: (c) => sdkUpload(c.s3, c.file) },
    ...(!CHOSEN.has('multipart') ? [] : apis.map((a, i): UploadPath => ({
      name: `service: POST /upload (multipart)${i === 0 ? '' : `, ${describeSettings(a.settings)}`}`,
      api: a,
      send: async (c) => {
        const sent = await postMultipart(a.proc.url, c.apiKey, c.file, c.size);
        return { ...sent, key: objectKeyFor(c.tenantId, sent.uploadId!) };
      },
    }))),
    ...(!CHOSEN.has('tus') ? [] : TUS_CHUNK_MIB.map((chunkMib): UploadPath => ({
      name: `service: tus /files/ (tus-js-client, ${chunkMib === 0 ? 'one PATCH' : `${chunkMib} MiB PATCHes`})`,
      api,
      send: async (c) => {
        const chunkSize = chunkMib === 0 ? Infinity : chunkMib * 2 ** 20;
        const { uploadId, tailSeconds } = await tusUpload(api.proc.url, c.apiKey, c.file, { chunkSize });
        const note = `last byte sent → final answer ${fixed(tailSeconds, 2)} s (the parts in flight, the multipart completion, the finish)`;
        return { key: objectKeyFor(c.tenantId, uploadId), uploadId, tus: true, note };
      },
    }))),
    ...(!CHOSEN.has('direct') ? [] : [{
      name: `direct: presigned parts (${DIRECT_PARTS_AT_ONCE} PUTs at once)`,
      api,
      send: async (c: Ctx) => {
        const { uploadId } = await directUpload(api.proc.url, c.apiKey, c.file, c.size, DIRECT_PARTS_AT_ONCE);
        return { key: objectKeyFor(c.tenantId, uploadId), uploadId };
      },
    }]),
  ];
}

interface Measured {
  path: UploadPath;
  round: number;
  seconds: number;
  apiPeakRssKb: number | null;
  apiCpu: number | null;
  storeCpu: number | null;
  /** this process's CPU: the client side */
  clientCpu: number;
  /** CPU seconds of every other process on the machine meanwhile: the noise */
  otherCpu: number;
  note?: string;
}


const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const config = loadConfig();
  const adminUrl = config.databaseUrl ?? DEFAULT_ADMIN_URL;
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'stream-api-upload-bench-'));
  onCleanup(() => rm(tmp, { recursive: true, force: true }));
  const fs = await statfs(tmp);
  const free = fs.bavail * fs.bsize;
  // the file, and in the store an object plus (while a multipart upload completes) its parts
  if (free < 3.2 * TARGET_BYTES) throw new Error(`${(free / 2 ** 30).toFixed(1)} GiB free under ${tmp}: too little for a ${values.mib} MiB run`);

  const file = path.join(tmp, 'upload.csv');
  const size = await generateBytes(file, TARGET_BYTES);
  const sha256 = await sha256File(file);

  const { databaseUrl, tenantId, apiKey } = await createBenchDatabase(adminUrl, 'stream-api-bench', 'bench-upload');

  let storePid: number | null = null;
  let s3: ObjectStoreOptions = config.s3;
  if (!config.s3.endpoint) {
    const started = await startStoreProcess(tmp, config.s3.bucket, { verbose: values.verbose });
    onCleanup(() => started.stop());
    storePid = started.pid;
    s3 = { ...config.s3, endpoint: started.endpoint };
  }
  const store = new ObjectStore(s3);
  onCleanup(async () => store.destroy());
  await store.ensureBucket();

  const passed = Object.fromEntries(API_SETTINGS.flatMap((k) => (process.env[k] ? [[k, process.env[k]!]] : [])));
  const apis: Api[] = [];
  for (const settings of [passed, ...ALSO.map((also) => ({ ...passed, ...also }))]) {
    const proc = await startApiProcess(
      {
        DATABASE_URL: databaseUrl,
        S3_ENDPOINT: s3.endpoint!,
        S3_BUCKET: s3.bucket,
        S3_REGION: s3.region,
        S3_ACCESS_KEY_ID: s3.accessKeyId,
        S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
        S3_FORCE_PATH_STYLE: String(s3.forcePathStyle),
        DEV_API_KEY: 'false',
        ...settings,
      },
      { verbose: values.verbose },
    );
    onCleanup(() => proc.stop());
    apis.push({ settings, proc });
  }
  const ctx: Ctx = { file, size, s3, apiKey, tenantId };
  const PATHS = paths(apis);

  console.log(
    `stream-api upload bench — node ${process.version}, ${os.cpus().length} CPUs, ` +
      `store ${storePid === null ? s3.endpoint : `s3rver in its own process`}, ` +
      `API (serve --role api) ${apis.map((a) => `pid ${a.proc.pid} with ${describeSettings(a.settings)}`).join('; ')}\n` +
      `file: ${(size / 2 ** 20).toFixed(0)} MiB (${size.toLocaleString('en-US')} bytes, stream-api generate)\n`,
  );

  // Warm-up: the first upload loads the AWS SDK into the API and opens its connections, once per process.
  const warm = path.join(tmp, 'warm.csv');
  const warmSize = await generateRows(warm, 500);
  for (const p of PATHS) await checkAndDelete(store, { ...ctx, size: warmSize }, await p.send({ ...ctx, file: warm, size: warmSize }), null, p.api?.proc.url);
  await sleep(1000);
  const idleRssKb = apis.map((a) => statusKb(a.proc.pid, 'VmRSS'));

  const measured: Measured[] = [];
  for (let round = 1; round <= REPEAT; round++) {
    for (const p of PATHS) {
      const apiSampler = new Sampler(p.api ? { pid: p.api.proc.pid } : {}).start();
      const storeSampler = storePid === null ? null : new Sampler({ pid: storePid }).start();
      const cpu0 = { api: apiSampler.snapshot().processCpu, store: storeSampler?.snapshot().processCpu ?? 0, client: process.cpuUsage() };
      const t0 = process.hrtime.bigint();
      const sent = await p.send(ctx);
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      const client = process.cpuUsage(cpu0.client);
      const [a, st] = await Promise.all([apiSampler.stop(), storeSampler?.stop()]);
      const m: Measured = {
        path: p,
        round,
        seconds,
        apiPeakRssKb: p.api ? a.peakRssKb : null,
        apiCpu: p.api ? (a.processCpu ?? 0) - cpu0.api : null,
        storeCpu: st ? (st.processCpu ?? 0) - cpu0.store : null,
        clientCpu: (client.user + client.system) / 1e6,
        otherCpu: 0,
        note: sent.note,
      };
      m.otherCpu = Math.max(0, a.machineCpu - m.clientCpu - (m.apiCpu ?? 0) - (m.storeCpu ?? 0));
      measured.push(m);
      await checkAndDelete(store, ctx, sent, sha256, p.api?.proc.url);
      await sleep(1000); // let the store finish with the deleted object's files before the next
    }
  }
  report(PATHS, measured, size, idleRssKb);
}

function report(PATHS: UploadPath[], measured: Measured[], size: number, idleRssKb: (number | null)[]): void {
  const mibPerS = (m: Measured) => size / 2 ** 20 / m.seconds;
  const baselineOf = (m: Measured) => measured.find((b) => b.round === m.round && b.path.baseline);
  const rows = measured.map((m) => {
    const base = baselineOf(m);
    return [
      String(m.round),
      m.path.name,
      fixed(m.seconds, 2),
      fixed(mibPerS(m), 1),
      m.path.baseline ? 'baseline' : base ? fixed(base.seconds / m.seconds, 2) : '–',
      m.apiPeakRssKb === null ? '–' : mib(m.apiPeakRssKb),
      fixed(m.apiCpu, 1),
      fixed(m.storeCpu, 1),
      fixed(m.clientCpu, 1),
      fixed(m.otherCpu, 1),
    ];
  });
  console.log(
    table(
      ['round', 'path', '>seconds', '>MiB/s', '>vs direct', '>API peak RSS', '>API CPU s', '>store CPU s', '>client CPU s', '>others CPU s'],
      rows,
    ),
  );
  for (const m of measured.filter((x) => x.note)) console.log(`round ${m.round}, ${m.path.name}: ${m.note}`);
  console.log(
    `\nAPI idle RSS after warm-up: ${idleRssKb.map(mib).join(', ')}. "others": CPU of every other process on this machine meanwhile (noise).\n` +
      `Targets: each path ≥ ${TARGET_RATIO}× the direct SDK upload of its round; API peak RSS ≤ ${mib(TARGET_RSS_KB)}.`,
  );
  for (const p of PATHS.filter((x) => !x.baseline)) {
    const runs = measured.filter((m) => m.path === p);
    const ratios = runs.map((m) => baselineOf(m)!.seconds / m.seconds);
    const peak = Math.max(...runs.map((m) => m.apiPeakRssKb ?? 0));
    const ok = ratios.every((r) => r >= TARGET_RATIO) && (!p.api || peak <= TARGET_RSS_KB);
    console.log(`${p.name}: ratio ${ratios.map((r) => fixed(r, 2)).join(', ')}; API peak RSS ${p.api ? mib(peak) : '–'}: ${verdict(ok)}`);
  }
}

runBench(main);
