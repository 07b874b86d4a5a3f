// Running the real worker against a test environment, and waiting for uploads to settle.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startWorker, type WorkerHandle } from '../../src/ingest/worker.ts';
import type { ProcessDeps } from '../../src/ingest/process-upload.ts';
import type { TestEnv } from './env.ts';

export function startTestWorker(t: TestEnv, extra: Partial<ProcessDeps> = {}): Promise<WorkerHandle> {
  return startWorker({ pool: t.pool, store: t.store, logger: t.logger, config: t.config }, extra);
}

export interface UploadRowState {
  status: string;
  rows_processed: number;
  rows_failed: number;
  bytes_processed: number;
  error_code: string | null;
  error: string | null;
  attempt: number;
  object_deleted_at: Date | null;
}

export async function uploadState(t: TestEnv, id: string): Promise<UploadRowState> {
  const { rows } = await t.pool.query('SELECT * FROM uploads WHERE id = $1', [id]);
  if (!rows[0]) throw new Error(`no upload ${id}`);
  return rows[0];
}

export async function waitForStatus(t: TestEnv, id: string, statuses: string[], timeoutMs = 60_000): Promise<UploadRowState> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const state = await uploadState(t, id);
    if (statuses.includes(state.status)) return state;
    if (Date.now() > until) throw new Error(`upload ${id} still ${state.status} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const BIN = fileURLToPath(new URL('../../bin/stream-api.mjs', import.meta.url));

/** `stream-api serve --role …` as a real child process against the test database and bucket. */
export function spawnService(t: TestEnv, role: string, env: Record<string, string> = {}): ChildProcess {
  return spawnServe(role, { ...t.env, ...env });
}

/** `stream-api serve --role …` as a real child process with exactly these settings (PORT and METRICS_PORT 0 unless given). */
export function spawnServe(role: string, env: Record<string, string>): ChildProcess {
  return spawn(process.execPath, [BIN, 'serve', '--role', role], {
    env: { ...process.env, PORT: '0', METRICS_PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

export async function countRows(t: TestEnv, uploadId: string): Promise<{ total: number; distinct: number }> {
  const { rows } = await t.pool.query(
    'SELECT count(*)::int AS total, count(DISTINCT line_number)::int AS distinct FROM webhook_events WHERE upload_id = $1',
    [uploadId],
  );
  return rows[0];
}
