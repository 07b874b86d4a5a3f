// Resumable uploads across the life of processes: the API process killed mid-upload and started again
// (a real child process), the upload resumed from HEAD's offset and loaded exactly; unfinished uploads
// past their expiry swept away with no part left in storage.
import { once } from 'node:events';
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import http from 'node:http';
import { AbortMultipartUploadCommand, CreateMultipartUploadCommand, ListMultipartUploadsCommand, ListPartsCommand } from '@aws-sdk/client-s3';
import { afterAll, describe, expect, it } from 'vitest';
import { createTestEnv, startApi, type TestEnv } from '../helpers/env.ts';
import { generateCsv } from '../helpers/generate.ts';
import { tusCreate, tusOffset, tusPatch, tusRequest } from '../helpers/tus.ts';
import { waitFor } from '../helpers/wait.ts';
import { countRows, spawnService, startTestWorker, waitForStatus } from '../helpers/worker.ts';

const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
});

const MiB = 1024 * 1024;
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

async function openUploads(t: TestEnv, tenantId: string): Promise<string[]> {
  const res = await t.s3.send(new ListMultipartUploadsCommand({ Bucket: t.config.s3.bucket, Prefix: `uploads/${tenantId}/` }));
  return (res.Uploads ?? []).map((u) => u.Key!);
}

/** Parts stored so far of every multipart upload open under the tenant's prefix. */
async function storedParts(t: TestEnv, tenantId: string): Promise<number> {
  const res = await t.s3.send(new ListMultipartUploadsCommand({ Bucket: t.config.s3.bucket, Prefix: `uploads/${tenantId}/` }));
  let parts = 0;
  for (const u of res.Uploads ?? []) {
    const listed = await t.s3.send(new ListPartsCommand({ Bucket: t.config.s3.bucket, Key: u.Key, UploadId: u.UploadId }));
    parts += listed.Parts?.length ?? 0;
  }
  return parts;
}

function startApiProcess(t: TestEnv): Promise<{ child: ChildProcess; url: string }> {
  const child = spawnService(t, 'api');
  child.stderr!.on('data', () => {});
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk) => {
      out += String(chunk);
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve({ child, url: m[1]! });
    });
    child.once('exit', (code) => reject(new Error(`api exited (${code}) before listening: ${out}`)));
  });
}

describe('tus across processes', () => {
  it('the API process killed mid-PATCH: a new one answers HEAD with what was kept, the resumed upload loads exactly', async () => {
    const t = await createTestEnv();
    cleanups.push(() => t.close());
    const worker = await startTestWorker(t);
    cleanups.push(() => worker.stop());
    const { key, tenantId } = await t.newTenantKey();
    const file = generateCsv(120_000, { seed: 11 }); // ~21 MB: parts of 8 MiB
    const first = await startApiProcess(t);
    const { path } = await tusCreate(first.url, key, file.length);

    // Send 14 MiB of the file, let the first part reach storage, then kill the process under the request.
    const req = http.request(new URL(path, first.url), {
      method: 'PATCH',
      agent: false,
      headers: {
        Authorization: `Bearer ${key}`,
        'Tus-Resumable': '1.0.0',
        'Upload-Offset': '0',
        'Content-Type': 'application/offset+octet-stream',
        'Content-Length': String(file.length),
      },
    });
    req.on('error', () => {});
    req.write(file.subarray(0, 14 * MiB));
    // Kill once the first 8 MiB part is in storage (a fixed pause was too short on a loaded machine).
    await waitFor(async () => (await storedParts(t, tenantId)) >= 1, 60_000, "the first part in storage", 100);
    first.child.kill('SIGKILL');
    await once(first.child, 'exit');
    req.destroy();

    const second = await startApiProcess(t);
    const offset = await tusOffset(second.url, key, path);
    expect(offset).toBeGreaterThanOrEqual(8 * MiB); // the finished part survived the process
    expect(offset).toBeLessThanOrEqual(14 * MiB);
    const rest = await tusPatch(second.url, key, path, offset, file.subarray(offset));
    expect(rest.status, rest.text).toBe(204);
    const uploadId = String(rest.headers['upload-id']);

    const state = await waitForStatus(t, uploadId, ['completed', 'failed']);
    expect(state.status, String(state.error)).toBe('completed');
    expect(await countRows(t, uploadId)).toEqual({ total: 120_000, distinct: 120_000 });
    const row = (await t.pool.query('SELECT sha256, size_bytes FROM uploads WHERE id = $1', [uploadId])).rows[0];
    expect(row).toEqual({ sha256: sha256(file), size_bytes: file.length });
  }, 120_000);

  it('an unfinished upload past TUS_EXPIRY_SECONDS is swept (parts aborted, .info and .part deleted); a late PATCH is 404/410', async () => {
    const t = await createTestEnv({ TUS_EXPIRY_SECONDS: '3', TUS_SWEEP_INTERVAL_SECONDS: '1' });
    cleanups.push(() => t.close());
    const api = await startApi(t);
    cleanups.push(() => api.close());
    const { tenantId, key } = await t.newTenantKey();
    const file = generateCsv(80_000, { seed: 12 });
    const { path, res: created } = await tusCreate(api.url, key, file.length);
    expect(Date.parse(String(created.headers['upload-expires']))).toBeGreaterThan(Date.now());
    // One whole part (6 MiB ≥ S3's 5 MiB minimum) and a short tail kept as the `.part` object.
    expect((await tusPatch(api.url, key, path, 0, file.subarray(0, 6 * MiB))).status).toBe(204);
    expect((await tusPatch(api.url, key, path, 6 * MiB, file.subarray(6 * MiB, 6 * MiB + 1000))).status).toBe(204);
    // Another multipart upload of the bucket, not a tus one (as a direct upload or a POST /upload in
    // progress has), just as old: the tus sweep must leave it alone.
    const otherKey = `uploads/${tenantId}/not-tus.csv`;
    const other = await t.s3.send(new CreateMultipartUploadCommand({ Bucket: t.config.s3.bucket, Key: otherKey }));
    cleanups.push(() => t.s3.send(new AbortMultipartUploadCommand({ Bucket: t.config.s3.bucket, Key: otherKey, UploadId: other.UploadId })));
    expect(await openUploads(t, tenantId)).toHaveLength(2);
    const stored = await t.listObjects(`uploads/${tenantId}/`);
    expect(stored.some((k) => k.endsWith('.csv.info'))).toBe(true);
    expect(stored.some((k) => k.endsWith('.csv.part'))).toBe(true);

    await waitFor(async () => (await openUploads(t, tenantId)).length === 1, 15_000, 'the sweep to abort the expired upload', 200);
    await waitFor(async () => (await t.listObjects(`uploads/${tenantId}/`)).length === 0, 5_000, 'the .info and .part objects deleted', 200);
    await new Promise((r) => setTimeout(r, 4500)); // it is past the expiry too now, and sweeps ran
    expect(await openUploads(t, tenantId)).toEqual([otherKey]);
    const late = await tusPatch(api.url, key, path, 6 * MiB + 1000, file.subarray(6 * MiB + 1000));
    expect([404, 410]).toContain(late.status);
    expect(['not_found', 'upload_expired']).toContain(late.error?.code);
    expect((await tusRequest(api.url, key, 'HEAD', path)).status).toBeGreaterThanOrEqual(404);
    expect((await t.pool.query('SELECT 1 FROM uploads WHERE tenant_id = $1', [tenantId])).rowCount).toBe(0);
  }, 60_000);
});
