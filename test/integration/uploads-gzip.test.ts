// gzip uploads end to end over real sockets: multipart POST /upload → s3rver → the real worker, which
// decompresses in its load pipeline → COPY into Postgres. A 1M-row .csv.gz against the same file
// uncompressed; gzip found by its magic bytes whatever the name; corrupt and truncated streams; a
// decompression bomb stopped early, and (in a worker child process) with its memory flat.
import { execFile, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createReadStream, createWriteStream, readFileSync } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createGzip, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatBytes } from '../../src/cli/client/progress.ts';
import { RATIO_GRACE_BYTES } from '../../src/ingest/decompress.ts';
import type { WorkerHandle } from '../../src/ingest/worker.ts';
import { directClient, putParts } from '../helpers/direct.ts';
import { useApi } from '../helpers/env.ts';
import { generateCsv, generateEvents } from '../helpers/generate.ts';
import { request, upload, type UploadInput } from '../helpers/http.ts';
import { waitFor } from '../helpers/wait.ts';
import { countRows, spawnService, startTestWorker, waitForStatus } from '../helpers/worker.ts';

const env = useApi();
let worker: WorkerHandle | null = null;
let key: string;
let dir: string;

beforeAll(async () => {
  worker = await startTestWorker(env.t, { progressIntervalMs: 200 });
  ({ key } = await env.t.newTenantKey());
  dir = await mkdtemp(path.join(os.tmpdir(), 'stream-api-gzip-'));
});
afterAll(async () => {
  await worker?.stop();
  await rm(dir, { recursive: true, force: true });
});

async function send(file: UploadInput['file'], fields: Record<string, string> = {}): Promise<string> {
  const res = await upload(env.api.url, key, { file, fields });
  expect(res.status, res.text).toBe(202);
  return res.body.uploadId as string;
}

const status = async (id: string) => (await request(env.api.url, key, 'GET', `/uploads/${id}`)).body;

/** Every stored row of the upload, reduced to a count and a content hash (upload_id aside), to compare loads. */
async function loadedDigest(id: string) {
  const { rows } = await env.t.pool.query(
    `SELECT count(*)::int AS rows, count(DISTINCT line_number)::int AS lines,
            sum(hashtext((line_number, event_id, event_type, source, customer_id, amount_cents, currency, occurred_at, payload)::text))::text AS hash
       FROM webhook_events WHERE upload_id = $1`,
    [id],
  );
  return rows[0];
}

async function rejects(id: string): Promise<string[]> {
  const { rows } = await env.t.pool.query('SELECT line, code, raw FROM upload_errors WHERE upload_id = $1 ORDER BY line', [id]);
  return rows.map((r) => `${r.line}:${r.code}:${r.raw}`);
}

/** The final outbox event the failure wrote, in the same transaction as the status (the dispatcher makes deliveries of it). */
async function failedEvent(id: string) {
  const { rows } = await env.t.pool.query(
    `SELECT event_type AS event, payload FROM outbox_events WHERE upload_id = $1 AND event_type <> 'upload.processing'`,
    [id],
  );
  return rows;
}

async function gzipFile(src: string, dst: string): Promise<void> {
  await pipeline(createReadStream(src), createGzip(), createWriteStream(dst));
}

/**
 * `totalBytes` of zeros as a multi-member gzip, made without compressing them all: one member of
 * 64 MiB of zeros (~64 KiB) repeated. `prefix`, if given, is a first member of its own.
 */
function zeroBomb(totalBytes: number, prefix?: string): Buffer {
  const member = gzipSync(Buffer.alloc(64 << 20), { level: 9 });
  const members = Array.from({ length: Math.ceil(totalBytes / (64 << 20)) }, () => member);
  return Buffer.concat(prefix === undefined ? members : [gzipSync(prefix), ...members]);
}

describe('gzip uploads', () => {
  it('a 1M-row .csv.gz loads exactly as the same file uncompressed; progress is by compressed bytes', { timeout: 600_000 }, async () => {
    const plain = path.join(dir, 'events-1m.csv');
    const packed = path.join(dir, 'events-1m.csv.gz');
    let broken = 0;
    await generateEvents(1_000_000, plain, { badRatio: 0.001, onBadRow: () => broken++ });
    await gzipFile(plain, packed);
    const [plainSize, packedSize] = [(await stat(plain)).size, (await stat(packed)).size];
    expect(packedSize).toBeLessThan(plainSize / 3);

    // Sampled while it loads: every status the API showed for the gzip upload.
    const gzId = await send({ path: packed });
    const seen: Record<string, any>[] = [];
    await waitFor(async () => {
      const body = await status(gzId);
      seen.push(body);
      return body.status === 'completed' || body.status === 'failed';
    }, 540_000, 'the gzip upload to finish', 100);
    const plainId = await send({ path: plain });
    await waitForStatus(env.t, plainId, ['completed', 'failed'], 540_000);

    const [gz, csv] = [await status(gzId), await status(plainId)];
    expect(gz).toMatchObject({
      status: 'completed', compression: 'gzip', rowsProcessed: 1_000_000 - broken, rowsFailed: broken,
      sizeBytes: packedSize, bytesProcessed: packedSize, uncompressedBytesProcessed: plainSize, progress: 1,
    });
    expect(csv).toMatchObject({
      status: 'completed', compression: 'none', rowsProcessed: 1_000_000 - broken, rowsFailed: broken,
      sizeBytes: plainSize, bytesProcessed: plainSize, uncompressedBytesProcessed: plainSize,
    });
    expect(broken).toBeGreaterThan(500);
    // The same rows, the same rejected lines with the same codes and bytes.
    const digest = await loadedDigest(gzId);
    expect(digest).toEqual(await loadedDigest(plainId));
    expect(digest).toMatchObject({ rows: 1_000_000 - broken, lines: 1_000_000 - broken });
    const gzRejects = await rejects(gzId);
    expect(gzRejects).toHaveLength(broken);
    expect(gzRejects).toEqual(await rejects(plainId));

    // Progress while processing: stored (compressed) bytes of the stored size, never the CSV's bytes.
    const during = seen.filter((s) => s.status === 'processing' && s.bytesProcessed > 0);
    expect(during.length, 'progress samples while processing').toBeGreaterThan(0);
    for (const s of during) {
      expect(s.compression).toBe('gzip');
      expect(s.bytesProcessed).toBeLessThanOrEqual(packedSize);
      expect(s.progress).toBeCloseTo(s.bytesProcessed / packedSize, 3);
      expect(s.uncompressedBytesProcessed).toBeGreaterThan(s.bytesProcessed); // CSV expands
      expect(s.uncompressedBytesProcessed).toBeLessThanOrEqual(plainSize); // all read, the commit still to come
    }
    expect(during.some((s) => s.progress > 0 && s.progress < 1)).toBe(true);
    for (let i = 1; i < during.length; i++) expect(during[i]!.bytesProcessed).toBeGreaterThanOrEqual(during[i - 1]!.bytesProcessed);

    // The list shows the same fields.
    const list = await request(env.api.url, key, 'GET', '/uploads?limit=10');
    expect(list.body.items.find((u: { uploadId: string }) => u.uploadId === gzId)).toMatchObject({
      compression: 'gzip', sizeBytes: packedSize, uncompressedBytesProcessed: plainSize,
    });
    await rm(plain);
    await rm(packed);
  });

  it('finds gzip by its magic bytes whatever the name; a .csv.gz that is plain text loads as CSV', async () => {
    const csv = generateCsv(2_000);
    const hidden = await send({ content: gzipSync(csv), filename: 'events.csv' });
    const misnamed = await send({ content: csv, filename: 'events.csv.gz' });
    for (const [id, compression, size] of [[hidden, 'gzip', gzipSync(csv).length], [misnamed, 'none', csv.length]] as const) {
      await waitForStatus(env.t, id, ['completed', 'failed']);
      expect(await status(id)).toMatchObject({
        status: 'completed', compression, rowsProcessed: 2_000, rowsFailed: 0, sizeBytes: size, uncompressedBytesProcessed: csv.length,
      });
      expect(await countRows(env.t, id)).toEqual({ total: 2_000, distinct: 2_000 });
    }
    // The OpenAPI document describes the fields.
    const openapi = (await request(env.api.url, null, 'GET', '/openapi.json')).body;
    const schema = JSON.stringify(openapi.components?.schemas ?? openapi);
    for (const field of ['"compression"', '"uncompressedBytesProcessed"', 'stored bytes read so far']) expect(schema).toContain(field);
    // The CLI shows both sizes of a gzip upload.
    const bin = fileURLToPath(new URL('../../bin/stream-api.mjs', import.meta.url));
    const cli = await promisify(execFile)(process.execPath, [bin, 'status', hidden], {
      env: { ...process.env, STREAM_API_URL: env.api.url, STREAM_API_KEY: key },
    });
    const [stored, uncompressed] = [gzipSync(csv).length, csv.length].map((n) => formatBytes(n));
    expect(cli.stdout).toMatch(new RegExp(`^file +events\\.csv \\(${stored} gzip\\)$`, 'm'));
    expect(cli.stdout).toMatch(new RegExp(`^bytes +${stored} of ${stored} read \\(compressed\\), ${uncompressed} uncompressed$`, 'm'));
  });

  it('a gzip file sent direct-to-storage (parts PUT to presigned URLs) loads the same way: the worker decompresses, not the door', async () => {
    const csv = generateCsv(30_000, { badRatio: 0.01 });
    const packed = gzipSync(csv);
    const direct = directClient(env, () => key);
    const started = await direct.startOk(packed, { filename: 'events.csv' });
    const res = await direct.complete(started.uploadId, await putParts(started, packed));
    expect(res.status, res.text).toBe(202);
    const viaMultipart = await send({ content: packed, filename: 'events.csv.gz' });
    for (const id of [started.uploadId, viaMultipart]) await waitForStatus(env.t, id, ['completed', 'failed']);
    const body = await status(started.uploadId);
    expect(body).toMatchObject({
      status: 'completed', compression: 'gzip', sizeBytes: packed.length, bytesProcessed: packed.length, uncompressedBytesProcessed: csv.length,
    });
    expect(body.rowsProcessed + body.rowsFailed).toBe(30_000);
    expect(body.rowsFailed).toBeGreaterThan(0);
    expect(await loadedDigest(started.uploadId)).toEqual(await loadedDigest(viaMultipart));
    expect(await rejects(started.uploadId)).toEqual(await rejects(viaMultipart));
  });

  it('fails a corrupt gzip (bytes flipped mid-way) and a truncated one with invalid_gzip: nothing loaded, failure notified', async () => {
    const packed = gzipSync(generateCsv(20_000));
    const flipped = Buffer.from(packed);
    for (let i = 0; i < 8; i++) flipped[(packed.length >> 1) + i]! ^= 0x55;
    const truncated = packed.subarray(0, Math.floor(packed.length * 0.7));
    for (const content of [flipped, truncated]) {
      const id = await send({ content, filename: 'broken.csv.gz' });
      await waitForStatus(env.t, id, ['completed', 'failed']);
      const body = await status(id);
      expect(body).toMatchObject({ status: 'failed', compression: 'gzip', rowsProcessed: 0, attempt: 1, error: { code: 'invalid_gzip' } });
      expect(body.error.message).toMatch(content === truncated ? /truncated/ : /corrupt/);
      expect(await countRows(env.t, id)).toEqual({ total: 0, distinct: 0 });
      expect(await failedEvent(id)).toEqual([
        { event: 'upload.failed', payload: expect.objectContaining({ status: 'failed', errorCode: 'invalid_gzip', rowsProcessed: 0 }) },
      ]);
      expect(await env.t.jobsFor(id)).toEqual([]); // permanent: not retried
    }
  });

  it('stops a decompression bomb (2 GiB of zeros in ~2 MB) at the ratio limit, early', async () => {
    const bomb = zeroBomb(2 * 1024 ** 3);
    expect(bomb.length).toBeLessThan(4 << 20);
    const id = await send({ content: bomb, filename: 'bomb.csv.gz' });
    await waitForStatus(env.t, id, ['completed', 'failed']);
    const body = await status(id);
    expect(body).toMatchObject({ status: 'failed', compression: 'gzip', rowsProcessed: 0, error: { code: 'decompression_limit' } });
    expect(body.error.message).toMatch(/GZIP_MAX_RATIO/);
    // Early: within the ratio's grace of uncompressed bytes, after a small part of the stored file.
    expect(body.uncompressedBytesProcessed).toBeLessThanOrEqual(RATIO_GRACE_BYTES);
    expect(body.bytesProcessed).toBeLessThan(bomb.length / 4);
    expect(await countRows(env.t, id)).toEqual({ total: 0, distinct: 0 });
    expect(await failedEvent(id)).toEqual([
      { event: 'upload.failed', payload: expect.objectContaining({ errorCode: 'decompression_limit' }) },
    ]);
  });
});

describe('a bomb in a worker process', () => {
  let child: ChildProcess | null = null;
  afterAll(async () => {
    if (child && child.exitCode === null) {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
  });

  const rssOf = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;

  it('decompresses up to GZIP_MAX_UNCOMPRESSED_BYTES with its memory flat, then fails the upload', { timeout: 180_000 }, async () => {
    // This worker alone takes jobs from here on; the ratio limit is lifted, so the whole limit streams through.
    await worker?.stop();
    worker = null;
    const limit = 192 << 20;
    child = spawnService(env.t, 'worker', { GZIP_MAX_RATIO: '100000', GZIP_MAX_UNCOMPRESSED_BYTES: String(limit) });
    let output = '';
    child.stderr!.on('data', (d) => (output = (output + String(d)).slice(-4000)));

    // Warm-up (and proof the child runs): a small gzip upload loads; zlib, the SDK and pg are loaded after it.
    const warm = await send({ content: gzipSync(generateCsv(1_000)), filename: 'warm.csv.gz' });
    const warmed = await waitForStatus(env.t, warm, ['completed', 'failed'], 60_000).catch((err) => {
      throw new Error(`${(err as Error).message}\n${output}`);
    });
    expect(warmed.status).toBe('completed');
    await new Promise((r) => setTimeout(r, 500));
    const baseline = rssOf(child.pid!);

    // A CSV header, then 1 GiB of zeros: one endless record the loader reads on until the limit stops it.
    const id = await send({ content: zeroBomb(1024 ** 3, 'event_id,event_type,occurred_at\n'), filename: 'bomb.csv.gz' });
    const samples: number[] = [];
    const sampler = setInterval(() => samples.push(rssOf(child!.pid!)), 25);
    const state = await waitForStatus(env.t, id, ['completed', 'failed'], 150_000).finally(() => clearInterval(sampler));
    const body = await status(id);
    expect(body, output).toMatchObject({ status: 'failed', rowsProcessed: 0, error: { code: 'decompression_limit' } });
    expect(state.error).toMatch(/GZIP_MAX_UNCOMPRESSED_BYTES/);
    // The whole limit went through the pipeline, not a byte more …
    expect(body.uncompressedBytesProcessed).toBeLessThanOrEqual(limit);
    expect(body.uncompressedBytesProcessed).toBeGreaterThan(limit - (4 << 20));
    // … in flat memory: the second half of the run costs no more than the first (memory that grows with
    // the bytes decompressed would), and the whole growth is a fraction of the 192 MiB. The constant
    // differs by runtime, measured: Node 20 ~32 MB, Node 24 ~65 MB (its collector frees buffers later).
    const mb = (bytes: number) => bytes / 2 ** 20;
    const half = Math.floor(samples.length / 2);
    const [firstHalf, secondHalf] = [Math.max(baseline, ...samples.slice(0, half)), Math.max(baseline, ...samples.slice(half))];
    const growthMb = mb(Math.max(firstHalf, secondHalf) - baseline);
    console.log(
      `bomb in a worker process: RSS ${mb(baseline).toFixed(0)} MB → peak ${mb(firstHalf).toFixed(0)} MB in the first half, ` +
        `${mb(secondHalf).toFixed(0)} MB in the second (+${growthMb.toFixed(1)} MB) while decompressing ${limit >> 20} MiB`,
    );
    expect(mb(secondHalf - firstHalf)).toBeLessThan(24);
    expect(growthMb).toBeLessThan(96);
  });
});
