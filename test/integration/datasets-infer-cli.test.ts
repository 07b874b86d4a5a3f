// `stream-api datasets infer|list|show` as a user runs them: real child processes against the real API.
// The JSON `infer` prints is ready for `datasets apply` (applied here by the admin command, unchanged);
// `--apply` creates the dataset over HTTP; list and show read it back; a second --apply is refused.
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useApi } from '../helpers/env.ts';
import { FIXTURES_DIR } from '../helpers/infer-fixtures.ts';

const BIN = fileURLToPath(new URL('../../bin/stream-api.mjs', import.meta.url));
const ctx = useApi();
const tenantName = `infer-cli-${process.pid}`;
let key: string;
let dir: string;

beforeAll(async () => {
  ({ key } = await ctx.t.newTenantKey(tenantName));
  dir = await mkdtemp(path.join(os.tmpdir(), 'stream-api-infer-cli-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const env = { ...process.env, ...ctx.t.env, STREAM_API_URL: ctx.api.url, STREAM_API_KEY: key };
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

// Each test starts several CLI processes (a few seconds each on a loaded 2-core machine).
describe('stream-api datasets infer', { timeout: 240_000 }, () => {
  it('prints a definition that `datasets apply` takes unchanged, and a summary on stderr', async () => {
    const res = await run(['datasets', 'infer', path.join(FIXTURES_DIR, 'kunden-win1252.csv')]);
    expect(res.code).toBe(0);
    const definition = JSON.parse(res.stdout);
    expect(definition).toMatchObject({ name: 'kunden_win1252', format: { delimiter: ';', encoding: 'windows-1252', decimalSeparator: ',' } });
    expect(res.stderr).toContain('rows judged');
    expect(res.stderr).toMatch(/^umsatz\s+Umsatz\s+numeric\s+yes\s+0\/5\s+12345,67 \| 987,5/m);

    const file = path.join(dir, 'kunden.json');
    await writeFile(file, res.stdout);
    const applied = await run(['datasets', 'apply', file, '--tenant', tenantName]);
    expect(applied.stderr).toBe('');
    expect(applied.stdout).toBe('kunden_win1252 created version 1\n');
    expect((await run(['datasets', 'apply', file, '--tenant', tenantName])).stdout).toBe('kunden_win1252 unchanged version 1\n');
  });

  it('--apply creates it over HTTP; list and show read it back; a second --apply is refused', async () => {
    const fixture = path.join(FIXTURES_DIR, 'orders-comma.csv');
    const created = await run(['datasets', 'infer', fixture, '--name', 'cli orders', '--apply', '--json']);
    expect(created.code).toBe(0);
    const body = JSON.parse(created.stdout);
    expect(body.created).toMatchObject({ name: 'cli_orders', version: 1 });
    expect(body.created.columns).toEqual(body.definition.columns.map((c: object) => ({ required: false, ...c })));

    const list = await run(['datasets', 'list']);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/^webhook_events\s+built-in/m);
    expect(list.stdout).toMatch(/^cli_orders\s+1\s+8\s+"t_[0-9a-f]{32}"\."cli_orders"$/m);
    expect(list.stdout).toMatch(/^kunden_win1252\s+1\s+7/m);

    const show = await run(['datasets', 'show', 'cli_orders']);
    expect(show.code).toBe(0);
    expect(show.stdout).toMatch(/^unit_price\s+numeric\(12,2\)\s+yes$/m);
    expect(show.stdout).toMatch(/^shipped_on\s+date$/m);

    const again = await run(['datasets', 'infer', fixture, '--name', 'cli_orders', '--apply']);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('dataset_exists');
  });

  it('refuses what it cannot read or the service refuses, with exit codes 2 and 1', async () => {
    const missing = await run(['datasets', 'infer', path.join(dir, 'nope.csv')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('cannot read');
    const binary = path.join(dir, 'image.csv');
    await writeFile(binary, Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0]));
    const refused = await run(['datasets', 'infer', binary]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('unsupported_media_type');
    expect((await run(['datasets', 'show', 'nope'])).stderr).toContain('not_found');
  });
});
