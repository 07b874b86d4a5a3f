// The service side of the bin: `keys create` is scriptable, `migrate` is idempotent, and a zero-config
// `serve` (embedded PostgreSQL + embedded S3 under DATA_DIR) prints a working key — the same one next time.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { useApi } from '../helpers/env.ts';
import { request, upload } from '../helpers/http.ts';

const suite = useApi();

const BIN = fileURLToPath(new URL('../../bin/stream-api.mjs', import.meta.url));
const SAMPLE = fileURLToPath(new URL('../../examples/webhook_events.csv', import.meta.url));
const run = promisify(execFile);

describe('stream-api bin (service commands)', () => {
  it('keys create prints only a new key, creating the tenant; the key works', async () => {
    const env = { ...process.env, ...suite.t.env };
    const first = await run(process.execPath, [BIN, 'keys', 'create', '--tenant', 'acme'], { env });
    expect(first.stdout).toMatch(/^sapi_[A-Za-z0-9_-]{20,}\n$/);
    const second = await run(process.execPath, [BIN, 'keys', 'create', '--tenant', 'acme'], { env });
    expect(second.stdout.trim()).not.toBe(first.stdout.trim());
    for (const key of [first.stdout.trim(), second.stdout.trim()]) {
      expect((await request(suite.api.url, key, 'GET', '/uploads')).status).toBe(200);
    }
    const { rows } = await suite.t.pool.query(`SELECT count(*)::int AS n FROM api_keys k JOIN tenants t ON t.id = k.tenant_id WHERE t.name = 'acme'`);
    expect(rows[0].n).toBe(2);

    const migrate = await run(process.execPath, [BIN, 'migrate'], { env });
    expect(migrate.stderr).toContain('up to date');
  });

  it('zero-config serve: embedded Postgres and S3 under DATA_DIR, a working printed key, kept across restarts', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'stream-api-zero-'));
    await chmod(dataDir, 0o755); // as root, the embedded Postgres runs as `postgres` and must reach it
    const env: Record<string, string | undefined> = {
      ...process.env,
      DATA_DIR: dataDir,
      PORT: '0',
      METRICS_PORT: '0',
      EMBEDDED_PG_PORT: String(56000 + (process.pid % 2000)),
      EMBEDDED_S3_PORT: '0',
      DEV_API_KEY: 'true',
      LOG_LEVEL: 'warn',
    };
    delete env.DATABASE_URL; // zero configuration: nothing points at a real server
    delete env.S3_ENDPOINT;
    try {
      const keys: string[] = [];
      for (let start = 0; start < 2; start++) {
        const child = spawn(process.execPath, [BIN, 'serve', '--role', 'all'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
        try {
          const banner = await bannerOf(child);
          const url = /listening on (http:\/\/\S+)/.exec(banner)![1]!;
          const key = /dev API key: (\S+)/.exec(banner)![1]!;
          expect(banner).toMatch(/curl -H "Authorization: Bearer sapi_\S+" -F file=@\S+webhook_events\.csv http:\/\/\S+\/upload/);
          keys.push(key);
          const res = await upload(url, key, { file: { path: SAMPLE } });
          expect(res.status).toBe(202);
          const status = await request(url, key, 'GET', res.body.statusUrl);
          expect(status.status).toBe(200);
          expect(['uploaded', 'processing', 'completed']).toContain(status.body.status);
        } finally {
          child.kill('SIGTERM');
          const [code] = await once(child, 'exit');
          expect(code).toBe(0);
        }
      }
      expect(keys[1]).toBe(keys[0]);
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  }, 120_000);
});

function bannerOf(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk) => {
      out += String(chunk);
      if (/curl .*\/upload\n/.test(out)) resolve(out);
    });
    child.stderr!.on('data', () => {}); // drained; warnings only
    child.once('exit', (code) => reject(new Error(`serve exited (${code}) before its banner:\n${out}`)));
  });
}
