// `stream-api upload` over tus as a user runs it: `node bin/stream-api.mjs` child processes against the
// real API and worker on loopback, through a TCP proxy that can slow the bytes down or cut the connection.
// A file over the threshold goes through /files/; the CLI killed mid-upload and run again resumes (the
// service already held bytes, the second run sends only the rest); a connection cut at ~50% is recovered
// by the same run. Each load is exact and the stored object is the file (SHA-256).
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WorkerHandle } from '../../src/ingest/worker.ts';
import { useApi } from '../helpers/env.ts';
import { generateCsv } from '../helpers/generate.ts';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.ts';
import { tusOffset } from '../helpers/tus.ts';
import { waitFor } from '../helpers/wait.ts';
import { countRows, startTestWorker, waitForStatus } from '../helpers/worker.ts';

const BIN = fileURLToPath(new URL('../../bin/stream-api.mjs', import.meta.url));
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

const env = useApi();
let worker: WorkerHandle;
let dir: string;
const proxies: TcpProxy[] = [];
beforeAll(async () => {
  worker = await startTestWorker(env.t);
  dir = await mkdtemp(path.join(os.tmpdir(), 'stream-api-cli-tus-'));
});
afterAll(async () => {
  for (const proxy of proxies) await proxy.close();
  await worker?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

interface CliRun {
  child: ChildProcess;
  stderr: () => string;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
}

/** The CLI in a user's shell: only the variables given (and PATH/HOME) come from the test runner. */
function startCli(args: string[], vars: Record<string, string>): CliRun {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { PATH: process.env.PATH ?? '', HOME: dir, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...vars },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, stderr: () => stderr, done };
}

async function proxy(opts: Parameters<typeof startTcpProxy>[1] = {}): Promise<TcpProxy> {
  const started = await startTcpProxy(env.api.url, opts);
  proxies.push(started);
  return started;
}

/** The resume state the CLI keeps under its config folder: fingerprint key → { uploadUrl, … }. */
async function resumeState(configDir: string): Promise<Record<string, { uploadUrl: string; size: number }>> {
  const text = await readFile(path.join(configDir, 'tus-uploads.json'), 'utf8').catch(() => '{}');
  return JSON.parse(text || '{}');
}

async function csvFile(name: string, rows: number, seed: number): Promise<{ path: string; data: Buffer }> {
  const data = generateCsv(rows, { seed });
  const file = path.join(dir, name);
  await writeFile(file, data);
  return { path: file, data };
}

async function expectLoaded(uploadId: string, data: Buffer, rows: number): Promise<void> {
  const state = await waitForStatus(env.t, uploadId, ['completed', 'failed']);
  expect(state.status, String(state.error)).toBe('completed');
  expect(await countRows(env.t, uploadId)).toEqual({ total: rows, distinct: rows });
  const row = (await env.t.pool.query('SELECT sha256, size_bytes FROM uploads WHERE id = $1', [uploadId])).rows[0];
  expect(row).toEqual({ sha256: sha256(data), size_bytes: data.length });
}

/** The upload's object (if still there) and any object named after it (tus keeps `<key>.info` beside it). */
async function objectsBeside(uploadId: string): Promise<string[]> {
  const { object_key } = (await env.t.pool.query('SELECT object_key FROM uploads WHERE id = $1', [uploadId])).rows[0];
  return (await env.t.listObjects(object_key)).sort();
}

describe('stream-api upload over tus', () => {
  it('a file over STREAM_API_TUS_THRESHOLD goes through /files/ (--wait --json: completed, exact rows); --no-tus forces one POST', async () => {
    const { tenantId, key } = await env.t.newTenantKey();
    const configDir = path.join(dir, 'config-threshold');
    const file = await csvFile('threshold.csv', 20_000, 21); // ~3.5 MB
    const vars = { STREAM_API_URL: env.api.url, STREAM_API_KEY: key, STREAM_API_CONFIG_DIR: configDir, STREAM_API_TUS_THRESHOLD: '1000000' };

    const res = await startCli(['upload', file.path, '--wait', '--json', '--max-errors', '0', '--dataset', 'webhook_events'], vars).done;
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toMatch(/^uploading threshold\.csv \(.+\) to .+, resumable \(tus\)$/m);
    const summary = JSON.parse(res.stdout);
    expect(summary).toMatchObject({ status: 'completed', rowsLoaded: 20_000, rowsRejected: 0, upload: { filename: 'threshold.csv', sizeBytes: file.data.length } });
    await expectLoaded(summary.uploadId, file.data, 20_000);
    // The metadata carried the options: the error budget and the dataset were recorded.
    const row = (await env.t.pool.query('SELECT max_errors, dataset FROM uploads WHERE id = $1', [summary.uploadId])).rows[0];
    expect(row).toEqual({ max_errors: 0, dataset: 'webhook_events' });
    // tus's own .info object beside the upload's (the loaded file itself is deleted on success): it went
    // through /files/. Nothing is left to resume.
    expect(await objectsBeside(summary.uploadId)).toEqual([`uploads/${tenantId}/${summary.uploadId}.csv.info`]);
    expect(await resumeState(configDir)).toEqual({});

    const forced = await startCli(['upload', file.path, '--no-tus'], vars).done;
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.stderr).toMatch(/, one request$/m);
    const multipartId = forced.stdout.trim();
    await expectLoaded(multipartId, file.data, 20_000);
    expect(await objectsBeside(multipartId)).toEqual([]);

    const both = await startCli(['upload', file.path, '--tus', '--no-tus'], vars).done;
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('--tus and --no-tus contradict each other');
  });

  it('killed (SIGKILL) mid-upload, the same command run again resumes from what the service holds and loads exactly', async () => {
    const { key } = await env.t.newTenantKey();
    const configDir = path.join(dir, 'config-kill');
    const file = await csvFile('big.csv', 120_000, 22); // ~21 MB
    // Slow enough that the kill lands in the middle whatever the machine's load.
    const link = await proxy({ bytesPerSecond: 3 * 1024 * 1024 });
    const vars = { STREAM_API_URL: link.url, STREAM_API_KEY: key, STREAM_API_CONFIG_DIR: configDir, STREAM_API_TUS_THRESHOLD: '1000000' };

    const first = startCli(['upload', file.path], vars);
    // The second plain progress line is printed as the upload passes 50%.
    const milestones = () => first.stderr().match(/^upload [\d.]+%/gm)?.length ?? 0;
    await waitFor(() => milestones() >= 2 || first.child.exitCode !== null, 60_000, 'the first run to pass 50%', 20);
    first.child.kill('SIGKILL');
    const killed = await first.done;
    expect(killed.signal, killed.stderr).toBe('SIGKILL');

    // The state file names the unfinished upload; the service holds part of it.
    const entries = Object.values(await resumeState(configDir));
    expect(entries).toHaveLength(1);
    expect(entries[0]!.size).toBe(file.data.length);
    const tusPath = new URL(entries[0]!.uploadUrl).pathname;
    let held = 0;
    await waitFor(async () => (held = await tusOffset(env.api.url, key, tusPath)) > 0, 10_000, 'the service to hold the bytes it got');
    expect(held).toBeLessThan(file.data.length);

    link.options.bytesPerSecond = undefined;
    const bytesBefore = link.bytesUp;
    const second = await startCli(['upload', file.path, '--wait', '--json'], vars).done;
    expect(second.code, second.stderr).toBe(0);
    const sentAgain = link.bytesUp - bytesBefore;
    expect(second.stderr).toMatch(/^resuming at .+: the service already holds that much$/m);
    expect(second.stderr).toMatch(/^uploaded .+ \(resumed at .+\): upload [0-9a-f-]{36}$/m);
    // Only the rest crossed the wire (plus a few KB of HTTP headers).
    expect(sentAgain).toBeLessThan(file.data.length - held + 64 * 1024);
    expect(sentAgain).toBeLessThan(file.data.length);
    const summary = JSON.parse(second.stdout);
    expect(`/files/${summary.uploadId}`).toBe(tusPath);
    await expectLoaded(summary.uploadId, file.data, 120_000);
    expect(await resumeState(configDir)).toEqual({});
  }, 120_000);

  it('a connection cut at ~50% is recovered by the same run (HEAD, then the rest); the load is exact', async () => {
    const { key } = await env.t.newTenantKey();
    const configDir = path.join(dir, 'config-cut');
    const file = await csvFile('cut.csv', 120_000, 23);
    const link = await proxy({ cutAfterBytes: Math.floor(file.data.length / 2) });
    const vars = { STREAM_API_URL: link.url, STREAM_API_KEY: key, STREAM_API_CONFIG_DIR: configDir, STREAM_API_TUS_THRESHOLD: '1000000' };

    const res = await startCli(['upload', file.path, '--json'], vars).done;
    expect(res.code, res.stderr).toBe(0);
    expect(link.cut).toBe(true);
    expect(link.connections).toBeGreaterThanOrEqual(2);
    expect(res.stderr).toMatch(/^connection lost \(.+\); resuming .*from what the service holds$/m);
    expect(res.stderr).toMatch(/^resuming at /m);
    // What crossed the wire: the file once, plus at most what was in flight at the cut.
    expect(link.bytesUp).toBeLessThan(file.data.length * 1.5);
    const body = JSON.parse(res.stdout);
    expect(body).toEqual({ uploadId: expect.any(String), status: 'uploaded', statusUrl: `/uploads/${body.uploadId}` });
    await expectLoaded(body.uploadId, file.data, 120_000);
    expect(await resumeState(configDir)).toEqual({});
  }, 120_000);
});
