// Resume demo (issue 12, "Done when"): a ~1 GiB generated CSV goes through tus (tus-js-client, as a Node
// client uses it) while the network fails under it: a TCP proxy between client and API destroys the
// connection at ~1/(N+1), 2/(N+1)… of the file (N = --cuts, default 2: ~33% and ~66%). tus-js-client asks
// HEAD for the offset each time and sends the rest from there. A worker (`serve --role worker`, its own
// process) then loads the upload; the demo checks that every generated row was loaded (rows_processed =
// the row count, none failed) and that the stored object's sha256, recorded by the API, is the file's.
// API, worker and the embedded s3rver each run in a process of their own (S3_ENDPOINT: that server).
//
// Usage: npm run demo:resume -- [--mib 1024] [--cuts 2] [--chunk-mib 0] [--verbose]
//   --chunk-mib N  MiB per PATCH (tus-js-client's chunkSize); 0 (default, as tus-js-client's) = one PATCH
//                  for the rest of the file
//   DATABASE_URL   as bench:upload: a database bench_<random> there, migrated, dropped at the end
// Exits 1 when the upload fails or does not load exactly.
import { mkdtemp, rm, statfs } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/config.ts';
import { startApiProcess } from './lib/api-process.ts';
import { startCutProxy } from './lib/cut-proxy.ts';
import { onCleanup, runBench } from './lib/cleanup.ts';
import { createBenchDatabase, DEFAULT_ADMIN_URL } from './lib/db.ts';
import { generateAbout, sha256File } from './lib/files.ts';
import { fixed, mib } from './lib/format.ts';
import { tusUpload } from './lib/resumable-clients.ts';
import { Sampler } from './lib/sampler.ts';
import { startStoreProcess } from './lib/store-process.ts';

const { values } = parseArgs({
  options: {
    mib: { type: 'string', default: '1024' },
    cuts: { type: 'string', default: '2' },
    'chunk-mib': { type: 'string', default: '0' },
    verbose: { type: 'boolean', default: false },
  },
});
const int = (name: 'mib' | 'cuts' | 'chunk-mib', min: number): number => {
  const n = Number(values[name]);
  if (!Number.isSafeInteger(n) || n < min) throw new Error(`--${name} needs an integer ≥ ${min}, got ${String(values[name])}`);
  return n;
};
const TARGET_BYTES = int('mib', 1) * 2 ** 20;
const CUTS = int('cuts', 0);
const CHUNK_MIB = int('chunk-mib', 0);
/** Processing a 1 GiB file takes about a minute here; this is the bound before the demo gives up. */
const PROCESSING_TIMEOUT_MS = 30 * 60_000;


const seconds = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e9;
const mibOf = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

interface Status {
  status: string;
  rowsProcessed: number;
  rowsFailed: number;
  sizeBytes: number;
  sha256: string | null;
  error?: unknown;
}

async function main(): Promise<boolean> {
  const config = loadConfig();
  const adminUrl = config.databaseUrl ?? DEFAULT_ADMIN_URL;
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'stream-api-resume-demo-'));
  onCleanup(() => rm(tmp, { recursive: true, force: true }));
  const fs = await statfs(tmp);
  if (fs.bavail * fs.bsize < 3.2 * TARGET_BYTES) throw new Error(`too little free disk under ${tmp} for a ${values.mib} MiB run`);

  const file = path.join(tmp, 'big.csv');
  const generated = await generateAbout(file, TARGET_BYTES);
  const sha256 = await sha256File(file);

  const { databaseUrl, apiKey } = await createBenchDatabase(adminUrl, 'stream-api-resume-demo', 'resume-demo');

  let s3 = config.s3;
  if (!s3.endpoint) {
    const started = await startStoreProcess(tmp, s3.bucket, { verbose: values.verbose });
    onCleanup(() => started.stop());
    s3 = { ...s3, endpoint: started.endpoint };
  }
  const env = {
    DATABASE_URL: databaseUrl,
    S3_ENDPOINT: s3.endpoint!,
    S3_BUCKET: s3.bucket,
    S3_REGION: s3.region,
    S3_ACCESS_KEY_ID: s3.accessKeyId,
    S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
    S3_FORCE_PATH_STYLE: String(s3.forcePathStyle),
    DEV_API_KEY: 'false',
  };
  const api = await startApiProcess(env, { verbose: values.verbose });
  onCleanup(() => api.stop());
  const worker = await startApiProcess(env, { verbose: values.verbose, role: 'worker' });
  onCleanup(() => worker.stop());
  const proxy = await startCutProxy(api.url);
  onCleanup(() => proxy.close());

  console.log(
    `stream-api resume demo — node ${process.version}, ${os.cpus().length} CPUs; API pid ${api.pid}, worker pid ${worker.pid}, ` +
      `client → TCP proxy → API\nfile: ${mibOf(generated.bytes)} (${generated.bytes.toLocaleString('en-US')} bytes, ` +
      `${generated.rows.toLocaleString('en-US')} rows, sha256 ${sha256.slice(0, 16)}…); ` +
      `tus-js-client, ${CHUNK_MIB === 0 ? 'one PATCH' : `${CHUNK_MIB} MiB PATCHes`}; ${CUTS} cut(s)\n`,
  );

  // Cut k lands when the file's k/(N+1) has gone through the proxy: the proxy counts bytes on the wire,
  // so after each resume the next cut is armed at that many bytes beyond the offset HEAD answered.
  const cuts: { at: number; connections: number; resumedFrom?: number }[] = [];
  const target = (k: number) => Math.round((generated.bytes * k) / (CUTS + 1));
  const arm = (fileOffset: number) => {
    if (cuts.length >= CUTS) return;
    const wireAt = proxy.upstreamBytes();
    proxy.cutAt(wireAt + target(cuts.length + 1) - fileOffset, (connections) => {
      const at = fileOffset + (proxy.upstreamBytes() - wireAt);
      cuts.push({ at, connections });
      console.log(`cut ${cuts.length}: ${connections} connection(s) destroyed at ~${mibOf(at)} of the file (${((100 * at) / generated.bytes).toFixed(1)}%)`);
    });
  };
  arm(0);
  let retries = 0;
  const apiSampler = new Sampler({ pid: api.pid }).start();
  const t0 = process.hrtime.bigint();
  const { uploadId } = await tusUpload(api.url, apiKey, file, {
    endpoint: proxy.url,
    chunkSize: CHUNK_MIB === 0 ? Infinity : CHUNK_MIB * 2 ** 20,
    retryDelays: [0, 1000, 3000, 5000],
    onRetry: (err) => {
      retries += 1;
      if (values.verbose) console.log(`retrying after: ${err.message.split('\n')[0]}`);
    },
    onResponse: (method, status, header) => {
      const cut = cuts.at(-1);
      if (method === 'HEAD' && status === 200 && cut && cut.resumedFrom === undefined) {
        cut.resumedFrom = Number(header('Upload-Offset'));
        console.log(`  HEAD: resuming from offset ${cut.resumedFrom.toLocaleString('en-US')} (${mibOf(cut.resumedFrom)}; ${mibOf(cut.at - cut.resumedFrom)} to send again)`);
        arm(cut.resumedFrom);
      }
    },
  });
  const uploadSeconds = seconds(t0);
  const apiPeak = (await apiSampler.stop()).peakRssKb;
  console.log(`upload complete: ${uploadId} in ${fixed(uploadSeconds, 1)} s (${fixed(generated.bytes / 2 ** 20 / uploadSeconds, 1)} MiB/s incl. the cuts), ` +
    `${mibOf(proxy.upstreamBytes())} through the proxy, ${retries} retries; API peak RSS ${mib(apiPeak)}`);

  const t1 = process.hrtime.bigint();
  const workerSampler = new Sampler({ pid: worker.pid }).start();
  let state: Status;
  for (;;) {
    const res = await fetch(new URL(`/uploads/${uploadId}`, api.url), { headers: { authorization: `Bearer ${apiKey}` } });
    state = (await res.json()) as Status;
    if (state.status === 'completed' || state.status === 'failed') break;
    if (seconds(t1) * 1000 > PROCESSING_TIMEOUT_MS) throw new Error(`not processed in time: ${JSON.stringify(state)}`);
    await new Promise((r) => setTimeout(r, 500));
  }
  const processSeconds = seconds(t1);
  const workerPeak = (await workerSampler.stop()).peakRssKb;

  const checks = [
    [`status completed`, state.status === 'completed', state.status],
    [`cuts made and each resumed from HEAD`, cuts.length === CUTS && cuts.every((c) => c.connections > 0 && c.resumedFrom !== undefined), JSON.stringify(cuts)],
    [`rows_processed = ${generated.rows.toLocaleString('en-US')} generated`, state.rowsProcessed === generated.rows && state.rowsFailed === 0, `${state.rowsProcessed} processed, ${state.rowsFailed} failed`],
    [`stored size = ${generated.bytes.toLocaleString('en-US')} bytes`, state.sizeBytes === generated.bytes, String(state.sizeBytes)],
    [`stored sha256 = the file's`, state.sha256 === sha256, String(state.sha256)],
  ] as const;
  console.log(`processed by the worker ${fixed(processSeconds, 1)} s after the upload completed ` +
    `(${Math.round(state.rowsProcessed / processSeconds).toLocaleString('en-US')} rows/s, worker peak RSS ${mib(workerPeak)})`);
  for (const [what, ok, seen] of checks) console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}${ok ? '' : ` — got ${seen}`}`);
  return checks.every(([, ok]) => ok);
}

runBench(main);
