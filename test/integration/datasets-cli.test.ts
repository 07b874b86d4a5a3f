// `stream-api datasets apply FILE --tenant NAME` as an operator runs it: a real child process against
// the test database. Applying the same file twice changes nothing; an additive edit is a new version;
// a destructive one is refused with the reason and exit code 1.
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestEnv, type TestEnv } from '../helpers/env.ts';

const BIN = fileURLToPath(new URL('../../bin/stream-api.mjs', import.meta.url));

let t: TestEnv;
let dir: string;
let tenant: { tenantId: string; name: string };
beforeAll(async () => {
  t = await createTestEnv();
  dir = await mkdtemp(path.join(os.tmpdir(), 'stream-api-datasets-'));
  const name = 'cli-tenant';
  tenant = { ...(await t.newTenantKey(name)), name };
});
afterAll(async () => {
  await t?.close();
  await rm(dir, { recursive: true, force: true });
});

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...t.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

async function apply(definition: unknown, tenantName = tenant.name) {
  const file = path.join(dir, 'meters.json');
  await writeFile(file, JSON.stringify(definition, null, 2));
  return run(['datasets', 'apply', file, '--tenant', tenantName]);
}

const meters = {
  name: 'meters',
  columns: [
    { name: 'meter_id', type: 'text', required: true, aliases: ['Meter'] },
    { name: 'read_at', type: 'timestamptz', required: true },
    { name: 'kwh', type: 'numeric(10,3)' },
  ],
};

async function versions(): Promise<number[]> {
  const { rows } = await t.pool.query('SELECT version FROM dataset_versions WHERE tenant_id = $1 AND name = $2 ORDER BY 1', [tenant.tenantId, 'meters']);
  return rows.map((r) => r.version);
}

describe('stream-api datasets apply', () => {
  it('creates, is idempotent, applies an additive change, refuses a destructive one', async () => {
    expect(await apply(meters)).toMatchObject({ code: 0, stdout: 'meters created version 1\n' });
    // the same definition, written differently (key order, type spelling): nothing changes
    const respelled = { columns: meters.columns.map((c) => ({ ...c, type: c.type.toUpperCase() })), name: 'meters' };
    expect(await apply(respelled)).toMatchObject({ code: 0, stdout: 'meters unchanged version 1\n' });
    expect(await versions()).toEqual([1]);

    const added = { ...meters, columns: [...meters.columns, { name: 'site', type: 'text' }] };
    expect(await apply(added)).toMatchObject({ code: 0, stdout: 'meters updated version 2\n' });
    expect(await apply(added)).toMatchObject({ code: 0, stdout: 'meters unchanged version 2\n' });

    const dropped = await apply(meters);
    expect(dropped.code).toBe(1);
    expect(dropped.stderr).toContain('column "site" would be dropped');
    expect(await versions()).toEqual([1, 2]);
    const { rows } = await t.pool.query(`SELECT count(*)::int AS n FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'meters'`, [
      `t_${tenant.tenantId.replaceAll('-', '')}`,
    ]);
    expect(rows[0].n).toBe(2 + 4);
  });

  it('refuses an invalid file and an unknown tenant with the reason', async () => {
    const unsafe = await apply({ ...meters, name: 'meters; DROP TABLE uploads' });
    expect(unsafe).toMatchObject({ code: 1 });
    expect(unsafe.stderr).toContain('may hold only');
    const unknown = await apply(meters, 'nobody');
    expect(unknown).toMatchObject({ code: 1 });
    expect(unknown.stderr).toContain('tenant "nobody" not found');
  });
});
