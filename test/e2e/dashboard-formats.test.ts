// The upload form's file format fields, end to end in a real Chromium: a real API and worker on a test
// database with the embedded S3 server; a Windows-1252, semicolon-separated file with decimal commas and
// DD/MM/YYYY dates is uploaded through the form (Uppy/tus) with the format chosen in its selects, and the
// rows are checked in PostgreSQL; the choices travel as tus metadata, blank ones not at all.
import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import iconv from 'iconv-lite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WorkerHandle } from '../../src/ingest/worker.ts';
import { createTestEnv, startApi, type TestEnv } from '../helpers/env.ts';
import { sendJson } from '../helpers/http.ts';
import { startTestWorker, waitForStatus } from '../helpers/worker.ts';

const CHROMIUM = '/usr/bin/chromium';
const HAS_CHROMIUM = existsSync(CHROMIUM);
if (!HAS_CHROMIUM) console.warn(`[dashboard formats e2e] SKIPPED: ${CHROMIUM} is not installed (CI installs it: apt-get install -y chromium)`);
const UI_TIMEOUT = 30_000;

let t: TestEnv;
let api: Awaited<ReturnType<typeof startApi>>;
let worker: WorkerHandle | undefined;
let key: string;
let tenantId: string;
let browser: Browser;
let page: Page;
const pageErrors: string[] = [];
const creations: string[] = [];

describe.skipIf(!HAS_CHROMIUM)(`dashboard upload form file format in Chromium (${CHROMIUM})`, { timeout: 120_000 }, () => {
  beforeAll(async () => {
    t = await createTestEnv();
    api = await startApi(t);
    ({ key, tenantId } = await t.newTenantKey());
    const created = await sendJson(api.url, key, 'POST', '/datasets', {
      name: 'kunden',
      columns: [{ name: 'name', type: 'text', required: true }, { name: 'umsatz', type: 'numeric(12,2)' }, { name: 'seit', type: 'date' }],
    });
    expect(created.status, created.text).toBe(201);
    worker = await startTestWorker(t);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'],
    });
    page = await (await browser.newContext({ locale: 'en-US', viewport: { width: 1280, height: 900 } })).newPage();
    page.on('pageerror', (err) => pageErrors.push(`pageerror: ${err.message}`));
    page.on('console', (msg) => {
      if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource')) pageErrors.push(`console: ${msg.text()}`);
    });
    page.on('request', (req) => {
      if (req.method() === 'POST' && new URL(req.url()).pathname === '/files/') creations.push(req.headers()['upload-metadata'] ?? '');
    });
    await page.addInitScript((k) => sessionStorage.setItem('stream-api.apiKey', k), key);
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await worker?.stop();
    await api?.close();
    await t?.close();
  });

  it('uploads a Windows-1252 file with semicolons, decimal commas and DD/MM/YYYY chosen in the form', async () => {
    await page.goto(`${api.url}/#/`);
    await page.locator('#upload-form .uppy-Dashboard').waitFor();
    await expect.poll(() => page.locator('#upload-dataset option[value="kunden"]').count(), { timeout: UI_TIMEOUT }).toBe(1);
    await page.locator('#upload-dataset').selectOption('kunden');
    await page.getByLabel('Delimiter').selectOption(';');
    await page.getByLabel('Encoding').selectOption('windows-1252');
    await page.getByLabel('Dates').selectOption('DD/MM/YYYY');
    await page.getByLabel('Decimal separator').selectOption(',');
    const file = iconv.encode('name;umsatz;seit\r\nMüller GmbH;1.234,56;31/12/2020\r\nCafé Löwe;-7,5;01/02/2021\r\n', 'windows-1252');
    await page.locator('#upload-form .uppy-Dashboard-input').first().setInputFiles({ name: 'kunden.csv', mimeType: 'text/csv', buffer: file });
    await page.getByRole('button', { name: 'Upload', exact: true }).click();
    await expect.poll(() => page.locator('#upload-result').innerText(), { timeout: UI_TIMEOUT }).toContain('Uploaded kunden.csv');
    const href = await page.locator('#upload-result a').getAttribute('href');
    const uploadId = decodeURIComponent(/^#\/uploads\/(.+)$/.exec(href ?? '')![1]!);
    const state = await waitForStatus(t, uploadId, ['completed', 'failed']);
    expect(state).toMatchObject({ status: 'completed', rows_processed: 2, rows_failed: 0 });
    const { rows } = await t.pool.query(`SELECT name, umsatz::text, seit::text FROM "t_${tenantId.replaceAll('-', '')}".kunden ORDER BY line_number`);
    expect(rows).toEqual([
      { name: 'Müller GmbH', umsatz: '1234.56', seit: '2020-12-31' },
      { name: 'Café Löwe', umsatz: '-7.50', seit: '2021-02-01' },
    ]);
    // The choices travelled as tus metadata; the quotes select was left blank and was not sent.
    const metadata = Object.fromEntries(creations.at(-1)!.split(',').map((pair) => pair.split(' ')).map(([k, v]) => [k, Buffer.from(v ?? '', 'base64').toString()]));
    expect(metadata).toMatchObject({ dataset: 'kunden', delimiter: ';', encoding: 'windows-1252', dateFormat: 'DD/MM/YYYY', decimalSeparator: ',' });
    expect(metadata).not.toHaveProperty('quotes');
    // The form is ready for the next file: every format select back to the default.
    await expect.poll(() => page.getByLabel('Encoding').inputValue()).toBe('');
    expect(pageErrors).toEqual([]);
  });
});
