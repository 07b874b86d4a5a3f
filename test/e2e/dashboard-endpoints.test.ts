// The endpoints pages end to end in a real Chromium: a real API, worker (uploads and the recovery job)
// and dispatcher on a test database, two real webhook receivers on loopback (one healthy, one failing),
// and the page driven like a person would: create (the secret shown once), the delivery log with each
// attempt, health, disable/enable, rotate, recover since a time, resend, delete, narrow screen.
// Screenshots go to test-artifacts/.
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WorkerHandle } from '../../src/ingest/worker.ts';
import { EVENT_TYPE_NAMES } from '../../src/notify/event-types.ts';
import { startDispatcher, type DispatcherHandle } from '../../src/notify/dispatcher.ts';
import { createTestEnv, startApi, type TestEnv } from '../helpers/env.ts';
import { generateCsv } from '../helpers/generate.ts';
import { request, upload } from '../helpers/http.ts';
import { startReceiver, type Receiver } from '../helpers/receiver.ts';
import { startTestWorker, waitForStatus } from '../helpers/worker.ts';

const CHROMIUM = '/usr/bin/chromium';
const HAS_CHROMIUM = existsSync(CHROMIUM);
if (!HAS_CHROMIUM) {
  console.warn(`[dashboard endpoints e2e] SKIPPED: ${CHROMIUM} is not installed (CI installs it: apt-get install -y chromium)`);
}

const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));
const UI_TIMEOUT = 30_000;
const HOSTILE = '<img src=x onerror=window.__pwned=1> flaky';

let t: TestEnv;
let api: Awaited<ReturnType<typeof startApi>>;
let worker: WorkerHandle;
let dispatcher: DispatcherHandle;
let healthy: Receiver;
let flaky: Receiver;
let flakyStatus = 500;
let key: string;
let browser: Browser;
let page: Page;
const pageErrors: string[] = [];
/** what the page showed at creation */
const shown = { healthy: { id: '', secret: '' }, flaky: { id: '', secret: '' } };

describe.skipIf(!HAS_CHROMIUM)(`dashboard endpoints pages in Chromium (${CHROMIUM})`, { timeout: 120_000 }, () => {
  beforeAll(async () => {
    await mkdir(ARTIFACTS, { recursive: true });
    t = await createTestEnv({
      WEBHOOK_ALLOWED_CIDRS: '127.0.0.0/8',
      WEBHOOK_MAX_RETRIES: '0', // one attempt, then failed: what recovery is for
      WEBHOOK_TIMEOUT_MS: '2000',
      ENDPOINT_BREAKER_THRESHOLD: '1', // the first failure opens the breaker
    });
    api = await startApi(t);
    worker = await startTestWorker(t);
    dispatcher = await startDispatcher({ pool: t.pool, config: t.config, logger: t.logger, databaseUrl: t.databaseUrl });
    healthy = await startReceiver('127.0.0.1', (_req, res) => res.end('thanks'));
    flaky = await startReceiver('127.0.0.1', (_req, res) => res.writeHead(flakyStatus).end(flakyStatus === 200 ? 'ok' : 'down'));
    ({ key } = await t.newTenantKey());

    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'],
    });
    const context = await browser.newContext({ locale: 'en-US', viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    page.on('pageerror', (err) => pageErrors.push(`pageerror: ${err.message}`));
    page.on('console', (msg) => {
      // A refused request is logged by Chromium itself as a failed resource load; anything else is ours.
      if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource')) pageErrors.push(`console: ${msg.text()}`);
    });
    await page.addInitScript((k) => sessionStorage.setItem('stream-api.apiKey', k), key);
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await dispatcher?.stop();
    await worker?.stop();
    await api?.close();
    await healthy?.close();
    await flaky?.close();
    await t?.close();
  });

  const text = (selector: string) => page.locator(selector).first().innerText();
  const shot = (name: string, fullPage = true) => page.screenshot({ path: `${ARTIFACTS}${name}.png`, fullPage, animations: 'disabled' });
  const apiGet = async (path: string) => (await request(api.url, key, 'GET', path)).body;
  const row = (id: string) => page.locator(`#endpoints tr[data-key="${id}"]`);
  const rowCells = (id: string) => row(id).locator('td').allInnerTexts();

  /** Fills the create form and submits it; resolves to the id and secret the page showed. */
  async function createInPage(fields: { url: string; description: string; eventTypes: string[]; rate?: string }) {
    await page.locator('#endpoint-url').fill(fields.url);
    await page.locator('#endpoint-description').fill(fields.description);
    for (const type of fields.eventTypes) await page.getByRole('checkbox', { name: type }).check();
    if (fields.rate) await page.getByLabel(/Rate limit per second/).fill(fields.rate);
    await page.getByRole('button', { name: 'Create endpoint' }).click();
    await expect.poll(() => page.locator('#endpoint-create-result .secret').count(), { timeout: UI_TIMEOUT }).toBe(1);
    const secret = await text('#endpoint-create-result .secret');
    const href = await page.locator('#endpoint-create-result a').getAttribute('href');
    return { id: decodeURIComponent(/^#\/endpoints\/(.+)$/.exec(href ?? '')![1]!), secret };
  }

  it('the nav leads to the endpoints page; the form creates an endpoint and shows its secret once', async () => {
    await page.goto(`${api.url}/`);
    await page.locator('#view-list').waitFor();
    await page.getByRole('navigation').getByRole('link', { name: 'Endpoints' }).click();
    await expect.poll(() => page.evaluate(() => location.hash)).toBe('#/endpoints');
    await expect.poll(() => text('#endpoints'), { timeout: UI_TIMEOUT }).toContain('No endpoints yet');
    expect(await page.locator('#view-list').isHidden()).toBe(true);
    // The event types are GET /event-types, each a checkbox.
    await expect.poll(() => page.locator('#endpoint-form input[name="eventTypes"]').count(), { timeout: UI_TIMEOUT }).toBe(EVENT_TYPE_NAMES.length);
    expect(await page.locator('#endpoint-form input[name="eventTypes"]').evaluateAll((boxes) => boxes.map((b) => (b as HTMLInputElement).value))).toEqual([...EVENT_TYPE_NAMES]);

    shown.healthy = await createInPage({ url: healthy.url, description: 'billing', eventTypes: ['upload.completed'], rate: '20' });
    expect(shown.healthy.secret).toMatch(/^whsec_/);
    expect((await apiGet(`/endpoints/${shown.healthy.id}/secret`)).secret).toBe(shown.healthy.secret);
    expect(await apiGet(`/endpoints/${shown.healthy.id}`)).toMatchObject({ url: healthy.url, description: 'billing', eventTypes: ['upload.completed'], channel: 'webhook', rateLimitPerSecond: 20, enabled: true });
    await expect.poll(() => rowCells(shown.healthy.id), { timeout: UI_TIMEOUT }).toEqual([healthy.url, 'billing', 'webhook', 'upload.completed', 'closed', '—', '—', '0']);
    await shot('endpoints-created');

    shown.flaky = await createInPage({ url: flaky.url, description: HOSTILE, eventTypes: ['upload.completed'] });
    expect(shown.flaky.secret).not.toBe(shown.healthy.secret);
    await expect.poll(() => row(shown.flaky.id).count(), { timeout: UI_TIMEOUT }).toBe(1);
    expect(await page.locator('#endpoints tbody tr').count()).toBe(2);

    // What the API refuses is said in the form, and nothing is created.
    await page.locator('#endpoint-url').fill('http://10.1.2.3/hook');
    await page.getByRole('button', { name: 'Create endpoint' }).click();
    await expect.poll(() => text('#endpoint-create-result'), { timeout: UI_TIMEOUT }).toMatch(/^Not created: url .*private/);
    expect(await page.locator('#endpoint-create-result .secret').count()).toBe(0); // the last secret is gone
    expect((await apiGet('/endpoints')).items).toHaveLength(2);
  });

  it("a delivery appears in the endpoint's log with its attempt; the failing receiver shows in health", async () => {
    const sent = await upload(api.url, key, { path: '/uploads', file: { content: generateCsv(50), filename: 'events.csv' } });
    expect(sent.status).toBe(202);
    await waitForStatus(t, sent.body.uploadId, ['completed']);
    await healthy.waitForRequests(1, UI_TIMEOUT);
    await flaky.waitForRequests(1, UI_TIMEOUT);

    // The list: the flaky endpoint's breaker opened on its first failure.
    await expect.poll(() => rowCells(shown.flaky.id), { timeout: UI_TIMEOUT }).toEqual([flaky.url, HOSTILE, 'webhook', 'upload.completed', 'open', '0%', '—', '1']);
    await expect.poll(async () => (await rowCells(shown.healthy.id)).slice(4), { timeout: UI_TIMEOUT }).toEqual(['closed', '100%', expect.stringMatching(/now|second/), '0']);
    await shot('endpoints-health');

    // The healthy endpoint's log: the delivery, its one attempt, signed with the secret the page showed.
    await row(shown.healthy.id).getByRole('link').click();
    await expect.poll(() => text('#endpoint-title'), { timeout: UI_TIMEOUT }).toBe('billing');
    const delivery = page.locator('#view-endpoint article.delivery').first();
    await expect.poll(() => delivery.locator('.delivery-meta .badge').innerText(), { timeout: UI_TIMEOUT }).toBe('sent');
    expect(await delivery.locator('.delivery-meta strong').innerText()).toBe('upload.completed');
    expect(await delivery.locator('.delivery-meta a').getAttribute('href')).toBe(`#/uploads/${sent.body.uploadId}`);
    const attempt = await delivery.locator('tbody tr').first().locator('td').allInnerTexts();
    expect(attempt).toEqual(['1', 'scheduled', expect.any(String), 'succeeded', '200', expect.stringMatching(/^\d+ ms$/), 'thanks', '—']);
    const got = healthy.requests[0]!;
    expect(await delivery.getAttribute('data-delivery-id')).toBe(got.headers['webhook-id']);
    expect(new Webhook(shown.healthy.secret).verify(got.body, got.headers as Record<string, string>)).toMatchObject({ type: 'upload.completed', uploadId: sent.body.uploadId });
    const counters = await page.locator('#view-endpoint .counters dd').allInnerTexts();
    expect(counters.slice(0, 3)).toEqual(['100%', '1', '0']);
    await shot('endpoint-detail');

    // Back on the list the secret is no longer shown.
    await page.locator('a.back').click();
    await row(shown.flaky.id).waitFor();
    expect(await page.locator('#endpoint-create-result .secret').count()).toBe(0);

    // The flaky endpoint: the 500 with its body, and the breaker state.
    await row(shown.flaky.id).getByRole('link').click();
    await expect.poll(() => text('#endpoint-title'), { timeout: UI_TIMEOUT }).toBe(HOSTILE);
    expect(await text('#view-endpoint .detail-head .badge')).toBe('open');
    const failed = page.locator('#view-endpoint article.delivery').first();
    await expect.poll(() => failed.locator('.delivery-meta .badge').innerText(), { timeout: UI_TIMEOUT }).toBe('failed');
    const failedAttempt = await failed.locator('tbody tr').first().locator('td').allInnerTexts();
    expect(failedAttempt.slice(0, 2)).toEqual(['1', 'scheduled']);
    expect(failedAttempt.slice(3, 7)).toEqual(['failed', '500', expect.stringMatching(/^\d+ ms$/), 'down']);
    expect(failedAttempt[7]).toContain('http_5xx');
    expect(await page.locator('img').count()).toBe(0);
    expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
  });

  it('disable, enable and rotate the secret from the detail page', async () => {
    const state = () => text('#view-endpoint .detail-head .badge');
    await page.getByRole('button', { name: 'Disable' }).click();
    await expect.poll(state, { timeout: UI_TIMEOUT }).toBe('disabled');
    expect(await text('#endpoint-action-status')).toContain('Disabled');
    expect((await apiGet(`/endpoints/${shown.flaky.id}`)).enabled).toBe(false);

    await page.getByRole('button', { name: 'Enable' }).click();
    await expect.poll(state, { timeout: UI_TIMEOUT }).toBe('closed'); // enabling closes the breaker
    expect((await apiGet(`/endpoints/${shown.flaky.id}`)).health).toMatchObject({ state: 'closed', consecutiveFailures: 0 });

    await page.getByRole('button', { name: 'Rotate secret' }).click();
    await expect.poll(() => page.locator('#endpoint-secret .secret').count(), { timeout: UI_TIMEOUT }).toBe(1);
    const rotated = await text('#endpoint-secret .secret');
    expect(rotated).toMatch(/^whsec_/);
    expect(rotated).not.toBe(shown.flaky.secret);
    expect((await apiGet(`/endpoints/${shown.flaky.id}/secret`)).secret).toBe(rotated);
    shown.flaky.secret = rotated;
    await shot('endpoint-rotated');
  });

  it('recover since a time: the operation is shown and followed until done; the failed delivery arrives', async () => {
    flakyStatus = 200; // the outage is over
    const before = flaky.requests.length;
    // Ten minutes ago in the browser's own time zone, as the datetime-local input takes it.
    const since = await page.evaluate(() => {
      const d = new Date(Date.now() - 10 * 60_000);
      return new Date(d.getTime() - d.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
    });
    await page.getByLabel('Since').fill(since);
    await page.getByRole('button', { name: 'Recover' }).click();
    const operation = page.locator('#recover-operation');
    await expect.poll(() => operation.getAttribute('data-done'), { timeout: UI_TIMEOUT }).toBe('true');
    expect(await operation.innerText()).toMatch(/^Operation [0-9a-f-]{36} done \(.+\): 1 delivery queued again\.$/);
    const operationId = await operation.getAttribute('data-operation-id');
    const op = await apiGet(`/operations/${operationId}`);
    expect(op).toMatchObject({ done: true, result: { queued: 1 }, metadata: { endpointId: shown.flaky.id } });
    expect(Date.parse(op.metadata.since)).toBe(await page.evaluate((value) => new Date(value).getTime(), since));

    // The log shows the second attempt (the recovery's), and the receiver got it with the new secret.
    const delivery = page.locator('#view-endpoint article.delivery').first();
    await expect.poll(() => delivery.locator('.delivery-meta .badge').innerText(), { timeout: UI_TIMEOUT }).toBe('sent');
    await expect.poll(() => delivery.locator('tbody tr').count(), { timeout: UI_TIMEOUT }).toBe(2);
    expect((await delivery.locator('tbody tr').nth(1).locator('td').allInnerTexts()).slice(3, 7)).toEqual(['succeeded', '200', expect.stringMatching(/^\d+ ms$/), 'ok']);
    await flaky.waitForRequests(before + 1, UI_TIMEOUT);
    const got = flaky.requests[before]!;
    expect(() => new Webhook(shown.flaky.secret).verify(got.body, got.headers as Record<string, string>)).not.toThrow();
    await shot('endpoint-recovered');
  });

  it('resends a delivery: a manual attempt appears', async () => {
    const delivery = page.locator('#view-endpoint article.delivery').first();
    const before = flaky.requests.length;
    await delivery.getByRole('button', { name: /^Resend/ }).click();
    await expect.poll(() => delivery.locator('tbody tr').count(), { timeout: UI_TIMEOUT }).toBe(3);
    await expect.poll(async () => {
      const cells = await delivery.locator('tbody tr').nth(2).locator('td').allInnerTexts();
      return [cells[0], cells[1], cells[3], cells[4]];
    }, { timeout: UI_TIMEOUT }).toEqual(['3', 'manual', 'succeeded', '200']);
    expect(await text('#view-endpoint article.delivery .action-status')).toContain('Resend queued');
    await flaky.waitForRequests(before + 1, UI_TIMEOUT);
  });

  it('is readable at 390 px wide', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    const overflow = () => page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    expect(await overflow()).toBeLessThanOrEqual(0);
    await shot('endpoint-detail-narrow');
    await page.locator('a.back').click();
    await row(shown.flaky.id).waitFor();
    expect(await overflow()).toBeLessThanOrEqual(0);
    const label = await row(shown.flaky.id).locator('td').nth(4).evaluate((td) => getComputedStyle(td, '::before').content);
    expect(label).toBe('"State"');
    await shot('endpoints-narrow');
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  it('deletes the endpoint after a confirmation', async () => {
    await row(shown.flaky.id).getByRole('link').click();
    await page.getByRole('button', { name: 'Delete endpoint' }).waitFor();
    page.once('dialog', (dialog) => dialog.accept());
    await page.getByRole('button', { name: 'Delete endpoint' }).click();
    await expect.poll(() => text('#notice'), { timeout: UI_TIMEOUT }).toBe(`Deleted the endpoint "${HOSTILE}".`);
    await expect.poll(() => page.evaluate(() => location.hash)).toBe('#/endpoints');
    await expect.poll(() => page.locator('#endpoints tbody tr').count(), { timeout: UI_TIMEOUT }).toBe(1);
    expect((await request(api.url, key, 'GET', `/endpoints/${shown.flaky.id}`)).status).toBe(404);
    expect(await page.locator('img').count()).toBe(0);
  });

  it('raised no script errors in the page', () => {
    expect(pageErrors).toEqual([]);
  });
});
