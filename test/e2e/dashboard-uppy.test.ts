// The dashboard's resumable upload in a real Chromium: Uppy (Dashboard + Tus) served by the API itself,
// a real API and worker on a test database. The upload is slowed (Chromium's own network throttling) so
// it can be paused midway; while paused nothing more reaches the server, which holds what it got (HEAD);
// resumed, it continues from there and the upload is processed with exact rows.
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type CDPSession, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WorkerHandle } from '../../src/ingest/worker.ts';
import { createTestEnv, startApi, type TestEnv } from '../helpers/env.ts';
import { generateCsv } from '../helpers/generate.ts';
import { tusOffset } from '../helpers/tus.ts';
import { countRows, startTestWorker, waitForStatus } from '../helpers/worker.ts';

const CHROMIUM = '/usr/bin/chromium';
const HAS_CHROMIUM = existsSync(CHROMIUM);
const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));
const UI_TIMEOUT = 30_000;

let t: TestEnv;
let api: Awaited<ReturnType<typeof startApi>>;
let worker: WorkerHandle;
let key: string;
let browser: Browser;
let page: Page;
let cdp: CDPSession;
const pageErrors: string[] = [];

/** Chromium's upload throughput (bytes/s), or unlimited. */
const throttle = (bytesPerSecond: number) =>
  cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: bytesPerSecond });

describe.skipIf(!HAS_CHROMIUM)(`dashboard: Uppy tus upload in Chromium (${CHROMIUM})`, { timeout: 120_000 }, () => {
  beforeAll(async () => {
    await mkdir(ARTIFACTS, { recursive: true });
    t = await createTestEnv();
    api = await startApi(t);
    worker = await startTestWorker(t);
    ({ key } = await t.newTenantKey());
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'],
    });
    page = await (await browser.newContext({ locale: 'en-US', viewport: { width: 1280, height: 900 } })).newPage();
    page.on('pageerror', (err) => pageErrors.push(`pageerror: ${err.message}`));
    // A CSP refusal is a console error too: Uppy must run under the dashboard's policy as it is.
    page.on('console', (msg) => msg.type() === 'error' && pageErrors.push(`console: ${msg.text()}`));
    cdp = await page.context().newCDPSession(page);
    await cdp.send('Network.enable');
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await worker?.stop();
    await api?.close();
    await t?.close();
  });

  /** Uppy's overall progress, 0–100, from its status bar. */
  const progress = async () =>
    Number((await page.locator('#upload-form .uppy-StatusBar [role="progressbar"]').getAttribute('aria-valuenow', { timeout: 5000 })) ?? 0);

  it('uploads with Uppy over tus: paused midway (the server holds what it got, nothing more arrives), resumed, completed with exact rows', async () => {
    const res = await page.goto(`${api.url}/`);
    const csp = res?.headers()['content-security-policy'] ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    await page.getByLabel('API key').fill(key);
    await page.getByRole('button', { name: 'Use key' }).click();
    await page.locator('#upload-form .uppy-Dashboard').waitFor();

    const file = generateCsv(20_000, { seed: 31 }); // ~3.5 MB: about 14 s at 256 KiB/s
    await throttle(256 * 1024);
    await page.locator('#upload-form .uppy-Dashboard-input').first().setInputFiles({ name: 'paused.csv', mimeType: 'text/csv', buffer: file });
    await page.getByRole('button', { name: 'Upload', exact: true }).click();
    await expect.poll(progress, { timeout: UI_TIMEOUT }).toBeGreaterThanOrEqual(10);

    await page.locator('#upload-form .uppy-StatusBar').getByRole('button', { name: 'Pause' }).click();
    await page.locator('#upload-form .uppy-StatusBar').getByRole('button', { name: 'Resume' }).waitFor();
    await page.screenshot({ path: `${ARTIFACTS}dashboard-uppy-paused.png`, animations: 'disabled' });
    // Where the upload lives: tus-js-client keeps its URL in localStorage (resumable after a reload too).
    const tusUrl = await page.evaluate(() => {
      const entry = Object.keys(localStorage).find((k) => k.startsWith('tus::'));
      return entry ? (JSON.parse(localStorage.getItem(entry)!) as { uploadUrl: string }).uploadUrl : null;
    });
    expect(tusUrl).toMatch(new RegExp(`^${api.url}/files/[0-9a-f-]{36}$`));
    const tusPath = new URL(tusUrl!).pathname;
    // The server keeps what arrived before the pause; while paused, nothing more comes.
    await expect.poll(() => tusOffset(api.url, key, tusPath), { timeout: UI_TIMEOUT }).toBeGreaterThan(0);
    await page.waitForTimeout(1000); // the status bar redraws at most twice a second: let it settle
    const held = await tusOffset(api.url, key, tusPath);
    expect(held).toBeLessThan(file.length);
    const pausedAt = await progress();
    expect(pausedAt).toBeGreaterThanOrEqual(10);
    await page.waitForTimeout(1500);
    expect(await tusOffset(api.url, key, tusPath)).toBe(held);
    expect(await progress()).toBe(pausedAt);
    expect((await t.pool.query('SELECT count(*)::int AS n FROM uploads')).rows[0].n).toBe(0);

    // Resumed, it goes on from the server's offset (HEAD), not from the start.
    const patchOffsets: number[] = [];
    page.on('request', (req) => req.method() === 'PATCH' && patchOffsets.push(Number(req.headers()['upload-offset'])));
    await throttle(-1);
    await page.locator('#upload-form .uppy-StatusBar').getByRole('button', { name: 'Resume' }).click();
    await expect.poll(() => page.locator('#upload-result').innerText(), { timeout: UI_TIMEOUT }).toContain('Uploaded paused.csv');
    const href = await page.locator('#upload-result a').getAttribute('href');
    const uploadId = decodeURIComponent(/^#\/uploads\/(.+)$/.exec(href ?? '')![1]!);
    expect(tusPath).toBe(`/files/${uploadId}`);
    expect(patchOffsets).toEqual([held]);

    const state = await waitForStatus(t, uploadId, ['completed', 'failed']);
    expect(state.status, String(state.error)).toBe('completed');
    expect(await countRows(t, uploadId)).toEqual({ total: 20_000, distinct: 20_000 });
    const row = (await t.pool.query('SELECT size_bytes, filename FROM uploads WHERE id = $1', [uploadId])).rows[0];
    expect(row).toEqual({ size_bytes: file.length, filename: 'paused.csv' });
    // The list shows it as any upload, live; the picker is ready for the next file.
    const listed = page.locator(`#uploads tr[data-upload-id="${uploadId}"]`);
    await expect.poll(() => listed.locator('.badge').innerText(), { timeout: UI_TIMEOUT }).toBe('completed');
    expect(await page.locator('#upload-form .uppy-Dashboard-Item').count()).toBe(0);
    expect(await page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith('tus::')))).toEqual([]);
    await page.screenshot({ path: `${ARTIFACTS}dashboard-uppy-done.png`, animations: 'disabled' });
    expect(pageErrors).toEqual([]);
  });
});
