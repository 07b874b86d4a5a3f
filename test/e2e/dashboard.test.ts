// The web dashboard end to end in a real Chromium: a real API, worker and dispatcher on a test database,
// a real webhook receiver on loopback, and the page driven like a person would (key, file picker,
// live list, detail, download, redeliver, narrow screen). Screenshots go to test-artifacts/.
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WorkerHandle } from '../../src/ingest/worker.ts';
import { startDispatcher, type DispatcherHandle } from '../../src/notify/dispatcher.ts';
import { breakRows, type BrokenFile } from '../helpers/bad-rows.ts';
import { createTestEnv, startApi, type TestEnv } from '../helpers/env.ts';
import { upload } from '../helpers/http.ts';
import { startReceiver, type Receiver } from '../helpers/receiver.ts';
import { startTestWorker } from '../helpers/worker.ts';
import { generateCsv } from '../helpers/generate.ts';

const CHROMIUM = '/usr/bin/chromium';
const HAS_CHROMIUM = existsSync(CHROMIUM);
if (!HAS_CHROMIUM) {
  console.warn(`[dashboard e2e] SKIPPED: ${CHROMIUM} is not installed (CI installs it: apt-get install -y chromium)`);
}

const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));
const generate = (rows: number) => generateCsv(rows).toString();
const UI_TIMEOUT = 30_000;

let t: TestEnv;
let api: Awaited<ReturnType<typeof startApi>>;
let worker: WorkerHandle;
let dispatcher: DispatcherHandle;
let receiver: Receiver;
let key: string;
let browser: Browser;
let page: Page;
let file: BrokenFile;
let uploadId: string;
const pageErrors: string[] = [];

function watchErrors(p: Page): void {
  p.on('pageerror', (err) => pageErrors.push(`pageerror: ${err.message}`));
  p.on('console', (msg) => {
    // A refused key is logged by Chromium itself as a failed resource load; anything else is ours.
    if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource')) pageErrors.push(`console: ${msg.text()}`);
  });
}

describe.skipIf(!HAS_CHROMIUM)(`dashboard in Chromium (${CHROMIUM})`, { timeout: 120_000 }, () => {
  beforeAll(async () => {
    await mkdir(ARTIFACTS, { recursive: true });
    t = await createTestEnv({ WEBHOOK_ALLOWED_CIDRS: '127.0.0.0/8', WEBHOOK_BACKOFF_BASE_MS: '300', WEBHOOK_TIMEOUT_MS: '2000' });
    api = await startApi(t);
    worker = await startTestWorker(t);
    dispatcher = await startDispatcher({ pool: t.pool, config: t.config, logger: t.logger, databaseUrl: t.databaseUrl });
    // The first webhook fails (500), the retry succeeds — so the page has two attempts to show.
    receiver = await startReceiver('127.0.0.1', (_req, res) =>
      receiver.requests.length === 1 ? res.writeHead(500).end('not yet') : res.end('thanks'),
    );
    ({ key } = await t.newTenantKey());
    file = breakRows(generate(10_000), 500); // 20 rejected rows, every kind of breakage

    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'],
    });
    const context = await browser.newContext({ acceptDownloads: true, locale: 'en-US', viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    watchErrors(page);
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await dispatcher?.stop();
    await worker?.stop();
    await api?.close();
    await receiver?.close();
    await t?.close();
  });

  const text = (selector: string) => page.locator(selector).first().innerText();
  /** Adds a file through Uppy's file input (what its "browse files" opens). */
  const chooseFile = (payload: { name: string; mimeType: string; buffer: Buffer }) =>
    page.locator('#upload-dashboard .uppy-Dashboard-input').first().setInputFiles(payload);
  const shot = (name: string, fullPage = true) => page.screenshot({ path: `${ARTIFACTS}${name}.png`, fullPage, animations: 'disabled' });

  it('asks for a key, explains a bad one, then shows an empty, live dashboard', async () => {
    const res = await page.goto(`${api.url}/`);
    expect(res?.status()).toBe(200);
    expect(res?.headers()['content-security-policy']).toContain("script-src 'self'");
    await page.locator('#view-welcome').waitFor();
    expect(await text('#live')).toBe('Not connected');

    await page.getByLabel('API key').fill('sk_definitely_not_a_key');
    await page.getByRole('button', { name: 'Use key' }).click();
    await expect.poll(() => text('#notice'), { timeout: UI_TIMEOUT }).toContain('That API key was not accepted');
    expect(await page.locator('#view-welcome').isVisible()).toBe(true);
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
    await shot('dashboard-bad-key');

    await page.getByLabel('API key').fill(key);
    await page.getByRole('button', { name: 'Use key' }).click();
    await page.locator('#view-list').waitFor();
    expect(await page.locator('#notice').isHidden()).toBe(true);
    await expect.poll(() => text('#uploads'), { timeout: UI_TIMEOUT }).toContain('No uploads yet');
    await expect.poll(() => text('.stat[data-status="all"] .stat-value')).toBe('0');
    // The live stream (POST /auth/token + GET /events) is connected.
    await expect.poll(() => text('#live'), { timeout: UI_TIMEOUT }).toBe('Live');
  });

  it('uploads through the file picker (Uppy, tus) with a byte progress bar; the row turns completed live', async () => {
    // Mark this document: if the page reloaded, the mark would be gone.
    await page.evaluate(() => Object.assign(window, { __sameDocument: true }));
    // Record every value of Uppy's progress bar, and slow the upload down so there is a middle to see.
    await page.evaluate(() => {
      const seen: number[] = [];
      Object.assign(window, { __progress: seen });
      const box = document.querySelector('#upload-dashboard')!;
      new MutationObserver(() => {
        const value = box.querySelector('.uppy-StatusBar [role="progressbar"]')?.getAttribute('aria-valuenow');
        if (value != null && seen.at(-1) !== Number(value)) seen.push(Number(value));
      }).observe(box, { subtree: true, childList: true, attributes: true, attributeFilter: ['aria-valuenow'] });
    });
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Network.enable');
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 512 * 1024 });

    await chooseFile({ name: 'events.csv', mimeType: 'text/csv', buffer: file.csv });
    await page.getByLabel(/Callback URL/).fill(receiver.url);
    await page.getByRole('button', { name: 'Upload', exact: true }).click();
    await expect.poll(() => page.evaluate(() => (window as unknown as { __progress: number[] }).__progress.some((v) => v > 0 && v < 100)), { timeout: UI_TIMEOUT }).toBe(true);
    await shot('dashboard-uploading');

    await expect.poll(() => text('#upload-result'), { timeout: UI_TIMEOUT }).toContain('Uploaded events.csv');
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
    const progress = await page.evaluate(() => (window as unknown as { __progress: number[] }).__progress);
    expect(progress.filter((v) => v > 0 && v < 100).length).toBeGreaterThan(0);
    expect(progress).toEqual([...progress].sort((a, b) => a - b)); // it only moves forward

    const href = await page.locator('#upload-result a').getAttribute('href');
    uploadId = decodeURIComponent(/^#\/uploads\/(.+)$/.exec(href ?? '')![1]!);
    const row = page.locator(`#uploads tr[data-upload-id="${uploadId}"]`);
    await expect.poll(() => row.locator('.badge').innerText(), { timeout: UI_TIMEOUT }).toBe('completed');
    const cells = await row.locator('td').allInnerTexts();
    expect(cells[0]).toBe('events.csv');
    expect(cells[2]).toBe((10_000 - file.broken.size).toLocaleString('en-US'));
    expect(cells[3]).toBe(String(file.broken.size));
    expect(cells[4]).toContain('100%');
    expect(cells[5]).toMatch(/^[\d,]+\/s$/);
    expect(cells[6]).toMatch(/now|second|minute/);
    await expect.poll(() => text('.stat[data-status="completed"] .stat-value'), { timeout: UI_TIMEOUT }).toBe('1');
    expect(await page.evaluate(() => (window as unknown as { __sameDocument?: boolean }).__sameDocument)).toBe(true);
    await shot('dashboard-list');

    // Keyboard focus is visible: Tab from the callback field lands on the Upload button, outlined.
    await page.getByLabel(/Callback URL/).focus();
    await page.keyboard.press('Tab');
    const focus = await page.evaluate(() => {
      const active = document.activeElement as HTMLElement;
      const style = getComputedStyle(active);
      return { text: active.textContent, visible: active.matches(':focus-visible'), outline: `${style.outlineStyle} ${style.outlineWidth}` };
    });
    expect(focus).toEqual({ text: 'Upload', visible: true, outline: 'solid 3px' });
    await page.emulateMedia({ colorScheme: 'dark' });
    await shot('dashboard-list-dark', false);
    await page.emulateMedia({ colorScheme: 'light' });
    await page.keyboard.press('Escape');
  });

  it('shows the upload: counters, rejected rows, errors.csv download and the webhook attempts', async () => {
    await page.locator(`#uploads tr[data-upload-id="${uploadId}"] a`).click();
    await expect.poll(() => page.evaluate(() => location.hash)).toBe(`#/uploads/${uploadId}`);
    await expect.poll(() => text('#detail-title'), { timeout: UI_TIMEOUT }).toBe('events.csv');
    expect(await text('#view-detail .detail-head .badge')).toBe('completed');
    const counters = await page.locator('#view-detail .counters dd').allInnerTexts();
    expect(counters[0]).toBe((10_000 - file.broken.size).toLocaleString('en-US'));
    expect(counters[1]).toBe(String(file.broken.size));

    // The rejected rows table lists every broken line with the code it was broken by.
    const errorRows = page.locator('#view-detail section[aria-labelledby^="errors-title"] tbody tr');
    await expect.poll(() => errorRows.count(), { timeout: UI_TIMEOUT }).toBe(file.broken.size);
    const lines = await errorRows.locator('td:nth-child(1)').allInnerTexts();
    const codes = await errorRows.locator('td:nth-child(3)').allInnerTexts();
    expect(new Map(lines.map((line, i) => [Number(line), codes[i]]))).toEqual(file.broken);

    // errors.csv comes through fetch + a blob: the route needs the key header.
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download errors.csv' }).click()]);
    expect(download.suggestedFilename()).toBe(`errors-${uploadId}.csv`);
    const csv = await readFile((await download.path())!, 'utf8');
    const [header, ...records] = csv.trimEnd().split('\n');
    expect(header).toBe(`${file.header},_line,_error`);
    expect(records).toHaveLength(file.broken.size);
    for (const [line, code] of file.broken) expect(csv).toMatch(new RegExp(`,${line},"?${code}: `));
    await expect.poll(() => text('section[aria-labelledby^="errors-title"] .action-status')).toContain(`Downloaded errors-${uploadId}.csv`);

    // The webhook: 500 first, then 200 on the scheduled retry.
    const delivery = page.locator('#view-detail article.delivery').first();
    await expect.poll(() => delivery.locator('.delivery-meta .badge').innerText(), { timeout: UI_TIMEOUT }).toBe('sent');
    const attempts = delivery.locator('tbody tr');
    expect(await attempts.count()).toBe(2);
    const first = await attempts.nth(0).locator('td').allInnerTexts();
    const second = await attempts.nth(1).locator('td').allInnerTexts();
    expect(first).toEqual(['1', 'scheduled', expect.any(String), '500', expect.stringMatching(/^\d+ ms$/), expect.stringContaining('http_5xx')]);
    expect(second).toEqual(['2', 'scheduled', expect.any(String), '200', expect.stringMatching(/^\d+ ms$/), '—']);
    await shot('dashboard-detail');
  });

  it('redelivers: a new manual attempt appears; a refused action shows the API message', async () => {
    const delivery = page.locator('#view-detail article.delivery').first();
    await delivery.getByRole('button', { name: /^Redeliver/ }).click();
    const attempts = delivery.locator('tbody tr');
    await expect.poll(() => attempts.count(), { timeout: UI_TIMEOUT }).toBe(3);
    await expect.poll(async () => (await attempts.nth(2).locator('td').allInnerTexts()).slice(0, 2).concat((await attempts.nth(2).locator('td').allInnerTexts())[3]!), { timeout: UI_TIMEOUT })
      .toEqual(['3', 'manual', '200']);
    expect(receiver.requests).toHaveLength(3);
    expect(await text('#view-detail article.delivery .action-status')).toContain('Redelivery queued');

    // Retrying a completed upload is refused by the API; its message is shown as is.
    await page.getByRole('button', { name: 'Retry processing' }).click();
    await expect.poll(() => text('#upload-action-status'), { timeout: UI_TIMEOUT }).toBe(
      'only a failed upload can be retried; this one is completed',
    );
    expect(await page.locator('#upload-action-status').getAttribute('data-kind')).toBe('error');
  });

  it('is readable at 390 px wide', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    const overflow = () => page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    expect(await overflow()).toBeLessThanOrEqual(0);
    await page.evaluate(() => window.scrollTo(0, 0));
    await shot('dashboard-detail-narrow', false);
    await page.locator('#view-detail article.delivery').first().scrollIntoViewIfNeeded();
    await shot('dashboard-detail-narrow-deliveries', false);
    await page.locator('section[aria-labelledby^="errors-title"]').scrollIntoViewIfNeeded();
    await shot('dashboard-detail-narrow-errors', false);
    await page.locator('a.back').click();
    await page.locator(`#uploads tr[data-upload-id="${uploadId}"]`).waitFor();
    expect(await overflow()).toBeLessThanOrEqual(0);
    // Table rows stack into cards with their column names.
    const label = await page.locator(`#uploads tr[data-upload-id="${uploadId}"] td`).nth(1)
      .evaluate((td) => getComputedStyle(td, '::before').content);
    expect(label).toBe('"Status"');
    await shot('dashboard-list-narrow');
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  it('deletes the upload, and never renders server data as markup', async () => {
    await page.locator(`#uploads tr[data-upload-id="${uploadId}"] a`).click();
    await page.getByRole('button', { name: 'Delete upload' }).waitFor();
    page.once('dialog', (dialog) => dialog.accept());
    await page.getByRole('button', { name: 'Delete upload' }).click();
    await expect.poll(() => text('#notice'), { timeout: UI_TIMEOUT }).toBe('Deleted the upload "events.csv".');
    await expect.poll(() => text('#uploads'), { timeout: UI_TIMEOUT }).toContain('No uploads yet');
    expect((await t.pool.query('SELECT 1 FROM uploads WHERE id = $1', [uploadId])).rowCount).toBe(0);

    const hostile = '<img src=x onerror=window.__pwned=1>.csv';
    await chooseFile({ name: hostile, mimeType: 'text/csv', buffer: Buffer.from(`${file.header}\n`) });
    await page.getByRole('button', { name: 'Upload', exact: true }).click();
    await expect.poll(() => page.locator('#uploads tbody tr .cell-file a').first().innerText(), { timeout: UI_TIMEOUT }).toBe(hostile);
    expect(await page.locator('#uploads img').count()).toBe(0);
    expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
  });

  it('shows a failed upload with its error; retry runs it again', async () => {
    await chooseFile({ name: 'wrong-header.csv', mimeType: 'text/csv', buffer: Buffer.from('foo,bar\n1,2\n') });
    await page.getByRole('button', { name: 'Upload', exact: true }).click();
    await expect.poll(() => text('#upload-result'), { timeout: UI_TIMEOUT }).toContain('Uploaded wrong-header.csv');
    await page.locator('#upload-result a').click();
    await expect.poll(() => text('#view-detail .detail-head .badge'), { timeout: UI_TIMEOUT }).toBe('failed');
    await expect.poll(() => text('#view-detail .error-box'), { timeout: UI_TIMEOUT }).toContain('missing required column(s)');
    expect(await text('#view-detail .error-box code')).toBe('missing_columns');
    await expect.poll(() => text('section[aria-labelledby^="deliveries-title"] .empty'), { timeout: UI_TIMEOUT }).toBe('Not sent: this upload has no callback URL.');
    expect(await page.getByRole('button', { name: /^Redeliver/ }).count()).toBe(0);
    await shot('dashboard-failed');

    await page.getByRole('button', { name: 'Retry processing' }).click();
    await expect.poll(() => text('#upload-action-status'), { timeout: UI_TIMEOUT }).toBe('Retry queued: the upload will be processed again.');
    // The second attempt fails the same way, live.
    await expect.poll(() => page.locator('#view-detail .facts dd').nth(5).innerText(), { timeout: UI_TIMEOUT }).toBe('2');
    await expect.poll(() => text('#view-detail .detail-head .badge'), { timeout: UI_TIMEOUT }).toBe('failed');
    await page.locator('a.back').click();
  });

  it('renews its live token before it expires, and recovers a dropped stream', async () => {
    const context = await browser.newContext({ locale: 'en-US' });
    const other = await context.newPage();
    watchErrors(other);
    let tokens = 0;
    let streams = 0;
    other.on('request', (req) => {
      const url = new URL(req.url());
      if (url.pathname === '/auth/token') tokens += 1;
      if (url.pathname === '/events' && url.searchParams.has('token')) streams += 1;
    });
    await other.clock.install(); // time runs normally until fast-forwarded
    await other.addInitScript((k) => sessionStorage.setItem('stream-api.apiKey', k), key);
    await other.goto(`${api.url}/`);
    await expect.poll(() => other.locator('#live').innerText(), { timeout: UI_TIMEOUT }).toBe('Live');
    expect([tokens, streams]).toEqual([1, 1]);
    const feeds = api.app.liveHub.subscriberCount; // this page's feed and the first page's

    // The token lives 5 minutes; a minute before that the page takes a new one and swaps streams.
    await other.clock.fastForward('04:10');
    await expect.poll(() => [tokens, streams], { timeout: UI_TIMEOUT }).toEqual([2, 2]);
    await expect.poll(() => api.app.liveHub.subscriberCount, { timeout: UI_TIMEOUT }).toBe(feeds); // the old one closed
    expect(await other.locator('#live').innerText()).toBe('Live');

    // Still live on the new stream: an upload sent from elsewhere appears and completes.
    const sent = await upload(api.url, key, { path: '/uploads', file: { content: `${file.header}\n${file.original.get(2)}\n`, filename: 'renewed.csv' } });
    expect(sent.status).toBe(202);
    const row = other.locator(`#uploads tr[data-upload-id="${sent.body.uploadId}"]`);
    await expect.poll(() => row.locator('.badge').innerText().catch(() => ''), { timeout: UI_TIMEOUT }).toBe('completed');

    // The server drops the stream (a restart, a proxy timeout): the browser reconnects it, and the
    // page re-reads the list for whatever it missed meanwhile.
    let listReads = 0;
    other.on('request', (req) => {
      if (new URL(req.url()).pathname === '/uploads' && req.method() === 'GET') listReads += 1;
    });
    api.app.liveHub.shutdownSessions();
    await expect.poll(() => other.locator('#live').innerText(), { timeout: UI_TIMEOUT }).toBe('Reconnecting…');
    await expect.poll(() => other.locator('#live').innerText(), { timeout: UI_TIMEOUT }).toBe('Live');
    await expect.poll(() => listReads, { timeout: UI_TIMEOUT }).toBeGreaterThan(0);
    await context.close();
  });

  it('a key revoked while the page is open: a message and the key prompt, not a blank page', async () => {
    await t.pool.query('UPDATE api_keys SET revoked_at = now() WHERE revoked_at IS NULL');
    await page.locator('.stat[data-status="failed"]').click(); // any API call
    await expect.poll(() => text('#notice'), { timeout: UI_TIMEOUT }).toBe(
      'The API key is no longer accepted (missing or invalid API key). Enter a valid key above.',
    );
    expect(await page.locator('#view-welcome').isVisible()).toBe(true);
    expect(await page.locator('#view-list').isHidden()).toBe(true);
    expect(await text('#live')).toBe('Not connected');
    expect(await page.evaluate(() => sessionStorage.getItem('stream-api.apiKey'))).toBeNull();
    await shot('dashboard-key-revoked', false);
  });

  it('raised no script errors in the page', () => {
    expect(pageErrors).toEqual([]);
  });
});
