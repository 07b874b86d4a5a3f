// `stream-api endpoints …` as a user runs it: `node bin/stream-api.mjs` child processes against a real API,
// worker (the recovery job) and dispatcher on loopback, with a real webhook receiver. Output is compared
// with what the API itself answers, and with what the receiver got.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WorkerHandle } from '../../src/ingest/worker.ts';
import { startDispatcher, type DispatcherHandle } from '../../src/notify/dispatcher.ts';
import { deliveriesOf } from '../helpers/endpoints.ts';
import { createTestEnv, startApi, type TestEnv } from '../helpers/env.ts';
import { request } from '../helpers/http.ts';
import { finishUpload } from '../helpers/outbox.ts';
import { startReceiver, type Receiver } from '../helpers/receiver.ts';
import { waitFor } from '../helpers/wait.ts';
import { startTestWorker } from '../helpers/worker.ts';

const BIN = fileURLToPath(new URL('../../bin/stream-api.mjs', import.meta.url));

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runCli(args: string[], env: Record<string, string>): Promise<CliResult> {
  const shell = { ...process.env };
  delete shell.STREAM_API_URL;
  delete shell.STREAM_API_KEY;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...shell, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

let t: TestEnv;
let api: Awaited<ReturnType<typeof startApi>>;
let worker: WorkerHandle;
let dispatcher: DispatcherHandle;
let receiver: Receiver;
let me: { tenantId: string; key: string };
let status = 500;

const cli = (...args: string[]) => runCli(args, { STREAM_API_URL: api.url, STREAM_API_KEY: me.key });
const get = async (p: string) => (await request(api.url, me.key, 'GET', p)).body;

beforeAll(async () => {
  t = await createTestEnv({
    WEBHOOK_ALLOWED_CIDRS: '127.0.0.0/8',
    WEBHOOK_MAX_RETRIES: '0', // one attempt, then failed: the outage is over at once
    WEBHOOK_TIMEOUT_MS: '2000',
    ENDPOINT_BREAKER_THRESHOLD: '1000',
  });
  api = await startApi(t);
  worker = await startTestWorker(t);
  dispatcher = await startDispatcher({ pool: t.pool, config: t.config, logger: t.logger, databaseUrl: t.databaseUrl });
  receiver = await startReceiver('127.0.0.1', (_req, res) => res.writeHead(status).end(status === 200 ? 'ok' : 'down'));
  me = await t.newTenantKey();
});

afterAll(async () => {
  await dispatcher?.stop();
  await worker?.stop();
  await api?.close();
  await receiver?.close();
  await t?.close();
});

describe('stream-api endpoints', { timeout: 60_000 }, () => {
  let id: string;
  let secret: string;

  it('create URL prints the id and the secret; --json is the API body', async () => {
    const human = await cli('endpoints', 'create', 'https://hooks.example.com/in', '--event-type', 'upload.failed', '--channel', 'slack', '--description', 'ops room');
    expect(human.code, human.stderr).toBe(0);
    const shown = /^endpoint +([0-9a-f-]{36})\nsecret +(whsec_\S+)\n$/.exec(human.stdout);
    expect(shown, human.stdout).not.toBeNull();
    expect(await get(`/endpoints/${shown![1]}`)).toMatchObject({ url: 'https://hooks.example.com/in', channel: 'slack', description: 'ops room', eventTypes: ['upload.failed'] });
    expect((await get(`/endpoints/${shown![1]}/secret`)).secret).toBe(shown![2]);

    const res = await cli('endpoints', 'create', receiver.url, '--event-type', 'upload.completed', '--event-type', 'upload.failed', '--rate-limit', '50', '--json');
    expect(res.code, res.stderr).toBe(0);
    const created = JSON.parse(res.stdout);
    ({ id, secret } = created);
    expect(created).toMatchObject({ url: receiver.url, channel: 'webhook', enabled: true, rateLimitPerSecond: 50, eventTypes: ['upload.completed', 'upload.failed'] });
    expect((await get(`/endpoints/${id}/secret`)).secret).toBe(secret);
    const { secret: _shownOnce, ...rest } = created;
    expect(await get(`/endpoints/${id}`)).toEqual(rest);
  });

  it('list: a table with health and the 1 h success rate; --json is the API page', async () => {
    // One failed delivery (the receiver answers 500) before the list.
    await finishUpload(t.pool, { tenantId: me.tenantId, callbackUrl: null });
    await waitFor(async () => (await deliveriesOf(t.pool, id)).some((d) => d.delivery_status === 'failed'), 20_000, 'the delivery to fail');
    await waitFor(async () => (await get(`/endpoints/${id}`)).health.consecutiveFailures === 1, 10_000, 'the health to count it');

    const res = await cli('endpoints', 'list');
    expect(res.code, res.stderr).toBe(0);
    const [header, ...lines] = res.stdout.trimEnd().split('\n');
    expect(header).toMatch(/^ID +STATE +SUCCESS 1H +FAILURES +LAST SUCCESS +CHANNEL +EVENTS +URL$/);
    expect(lines).toHaveLength(2);
    expect(lines[0]!.split(/\s+/)).toEqual([id, 'closed', '0%', '1', '—', 'webhook', 'upload.completed,upload.failed', receiver.url]);
    expect(lines[1]).toMatch(/ closed +— +0 +— +slack +upload\.failed +https:\/\/hooks\.example\.com\/in$/);

    const json = await cli('endpoints', 'list', '--json');
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual(await get('/endpoints?limit=100'));
    const paged = await cli('endpoints', 'list', '--limit', '1');
    expect(paged.stdout.trimEnd().split('\n')).toHaveLength(2);
    expect(paged.stderr).toMatch(/^more: stream-api endpoints list --cursor \S+$/m);
  });

  it('disable and enable: the state changes in the API; rotate-secret prints the new secret', async () => {
    const off = await cli('endpoints', 'disable', id);
    expect(off.code, off.stderr).toBe(0);
    expect(off.stdout).toBe(`endpoint ${id} disabled: disabled\n`);
    expect((await get(`/endpoints/${id}`)).health.state).toBe('disabled');
    const listed = await cli('endpoints', 'list', '--json');
    expect(JSON.parse(listed.stdout).items.find((e: { id: string }) => e.id === id).enabled).toBe(false);

    const on = await cli('endpoints', 'enable', id, '--json');
    expect(on.code, on.stderr).toBe(0);
    expect(JSON.parse(on.stdout)).toMatchObject({ id, enabled: true, health: { state: 'closed' } });

    const rotated = await cli('endpoints', 'rotate-secret', id, '--json');
    expect(rotated.code, rotated.stderr).toBe(0);
    const body = JSON.parse(rotated.stdout);
    expect(body.secret).not.toBe(secret);
    expect(body.previousSecretExpiresAt).not.toBeNull();
    expect((await get(`/endpoints/${id}/secret`)).secret).toBe(body.secret);
    secret = body.secret;
  });

  it('recover --since --wait follows the operation to done; the failed delivery arrives, signed with the new secret', async () => {
    const [failed] = await deliveriesOf(t.pool, id);
    expect(failed!.delivery_status).toBe('failed');
    const before = receiver.requests.length;
    status = 200; // the outage is over
    const since = new Date(Date.now() - 10 * 60_000).toISOString();
    const res = await cli('endpoints', 'recover', id, '--since', since, '--wait', '--json');
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toMatch(/^recovery started: operation [0-9a-f-]{36} /m);
    const operation = JSON.parse(res.stdout);
    expect(operation).toMatchObject({ done: true, result: { queued: 1 }, metadata: { endpointId: id, since, queued: 1 } });
    expect(await get(`/operations/${operation.id}`)).toEqual(operation);

    await receiver.waitForRequests(before + 1, 20_000);
    const again = receiver.requests[before]!;
    expect(again.headers['webhook-id']).toBe(failed!.id);
    expect(() => new Webhook(secret).verify(again.body, again.headers as Record<string, string>)).not.toThrow();
    await waitFor(async () => (await deliveriesOf(t.pool, id))[0]!.delivery_status === 'sent', 20_000, 'the recovered delivery to be sent');

    // Without --wait: the operation as started, readable.
    const quick = await cli('endpoints', 'recover', id, '--since', since);
    expect(quick.code, quick.stderr).toBe(0);
    expect(quick.stdout).toMatch(/^operation +[0-9a-f-]{36}$/m);
    expect(quick.stdout).toMatch(/^done +(no|yes)/m);
  });

  it('mistakes: usage → exit 2; what the API refuses → exit 1 with its code', async () => {
    const usage = await Promise.all([
      cli('endpoints'),
      cli('endpoints', 'frobnicate'),
      cli('endpoints', 'recover', id),
      cli('endpoints', 'create', receiver.url, '--channel', 'pigeon'),
      cli('endpoints', 'create', receiver.url, '--rate-limit', 'lots'),
      cli('endpoints', 'disable'),
    ]);
    for (const r of usage) expect(r.code, r.stderr).toBe(2);
    expect(usage[1]!.stderr).toContain('unknown subcommand "frobnicate"');
    expect(usage[2]!.stderr).toContain('missing --since');
    expect(usage[3]!.stderr).toContain('--channel must be one of webhook, slack, email');
    expect(usage[5]!.stderr).toContain('usage: stream-api endpoints disable ID');

    const refused = await Promise.all([
      cli('endpoints', 'create', 'http://10.0.0.1/hook'),
      cli('endpoints', 'disable', '00000000-0000-4000-8000-000000000000'),
      cli('endpoints', 'recover', id, '--since', 'yesterday'),
      cli('endpoints', 'create', receiver.url, '--event-type', 'upload.exploded', '--json'),
    ]);
    for (const r of refused) expect(r.code, r.stderr).toBe(1);
    expect(refused[0]!.stderr).toContain('error: invalid_endpoint_url:');
    expect(refused[1]!.stderr).toContain('error: not_found: endpoint not found');
    expect(refused[2]!.stderr).toContain('error: validation_failed: since must be an RFC 3339 timestamp');
    expect(JSON.parse(refused[3]!.stdout).error).toMatchObject({ code: 'validation_failed', status: 400 });
    expect((await get('/endpoints?limit=100')).items).toHaveLength(2); // nothing refused was created
  });
});
