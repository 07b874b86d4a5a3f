// The datasets pages and the upload form's dataset and mode, end to end in a real Chromium: a real API
// and worker on a test database with the embedded S3 server, the page driven like a person would:
// create a dataset in the editable columns table, see it listed, add a column (PUT), a destructive edit
// refused with the server's 409 message, delete refused while an upload is unfinished, an upload through
// the form (Uppy/tus) choosing the dataset and mode upsert — the rows checked in the tenant's table in
// PostgreSQL — narrow screen, a definition inferred from a sample file and created, and delete. Screenshots go to test-artifacts/.
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WorkerHandle } from '../../src/ingest/worker.ts';
import { createTestEnv, startApi, type TestEnv } from '../helpers/env.ts';
import { request, upload } from '../helpers/http.ts';
import { startTestWorker, waitForStatus } from '../helpers/worker.ts';

const CHROMIUM = '/usr/bin/chromium';
const HAS_CHROMIUM = existsSync(CHROMIUM);
if (!HAS_CHROMIUM) {
  console.warn(`[dashboard datasets e2e] SKIPPED: ${CHROMIUM} is not installed (CI installs it: apt-get install -y chromium)`);
}

const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));
const UI_TIMEOUT = 30_000;
const HOSTILE = '<img src=x onerror=window.__pwned=1>';

let t: TestEnv;
let api: Awaited<ReturnType<typeof startApi>>;
let worker: WorkerHandle | undefined;
let key: string;
let tenantId: string;
let browser: Browser;
let page: Page;
const pageErrors: string[] = [];
/** what the page's confirm() dialogs are answered, and their texts */
let confirmAnswer = true;
const dialogs: string[] = [];

describe.skipIf(!HAS_CHROMIUM)(`dashboard datasets pages in Chromium (${CHROMIUM})`, { timeout: 120_000 }, () => {
  beforeAll(async () => {
    await mkdir(ARTIFACTS, { recursive: true });
    t = await createTestEnv();
    api = await startApi(t);
    ({ key, tenantId } = await t.newTenantKey());
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
    page.on('dialog', (dialog) => {
      dialogs.push(dialog.message());
      return confirmAnswer ? dialog.accept() : dialog.dismiss();
    });
    await page.addInitScript((k) => sessionStorage.setItem('stream-api.apiKey', k), key);
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await worker?.stop();
    await api?.close();
    await t?.close();
  });

  const text = (selector: string) => page.locator(selector).first().innerText();
  const shot = (name: string) => page.screenshot({ path: `${ARTIFACTS}${name}.png`, fullPage: true, animations: 'disabled' });
  const apiGet = async (path: string) => (await request(api.url, key, 'GET', path)).body;
  const schema = () => `t_${tenantId.replaceAll('-', '')}`;
  const table = () => `"${schema()}".products`;
  const editorRow = (editorId: string, n: number) => page.locator(`#${editorId} tbody tr`).nth(n);
  /** Fills row `n` of the editable columns table `editorId`. */
  async function fillColumn(editorId: string, n: number, c: { name: string; type: string; precision?: string; scale?: string; required?: boolean; key?: boolean; values?: string }) {
    const row = editorRow(editorId, n);
    await row.locator('[data-field="name"]').fill(c.name);
    await row.locator('[data-field="type"]').selectOption(c.type);
    if (c.precision) await row.locator('[data-field="precision"]').fill(c.precision);
    if (c.scale) await row.locator('[data-field="scale"]').fill(c.scale);
    if (c.required) await row.locator('[data-field="required"]').check();
    if (c.key) await row.locator('[data-field="key"]').check();
    if (c.values) await row.locator('[data-field="values"]').fill(c.values);
  }
  const modeOptions = () => page.locator('#upload-mode option').evaluateAll((options) => options.map((o) => (o as HTMLOptionElement).value));

  it('the nav leads to the datasets page; a dataset created in the editable table is listed and defined as entered', async () => {
    await page.goto(`${api.url}/`);
    await page.locator('#view-list').waitFor();
    await page.getByRole('navigation').getByRole('link', { name: 'Datasets' }).click();
    await expect.poll(() => page.evaluate(() => location.hash)).toBe('#/datasets');
    await expect.poll(() => page.locator('#datasets tr[data-key="webhook_events"] td').allInnerTexts(), { timeout: UI_TIMEOUT }).toEqual(['webhook_events', 'built in', expect.any(String), '—', '—']);

    await page.locator('#dataset-name').fill('products');
    await fillColumn('dataset-columns', 0, { name: 'sku', type: 'text', required: true, key: true });
    await editorRow('dataset-columns', 0).locator('[data-field="aliases"]').fill(`SKU code, ${HOSTILE}`);
    for (const [n, c] of [
      { name: 'price', type: 'numeric', precision: '8', scale: '2' },
      { name: 'status', type: 'enum', values: 'new, used' },
      { name: 'scratch', type: 'integer' },
    ].entries()) {
      await page.getByRole('button', { name: 'Add column' }).click();
      await fillColumn('dataset-columns', n + 1, c);
    }
    // the last row goes again: remove takes it out of the definition
    await editorRow('dataset-columns', 3).getByRole('button', { name: 'Remove' }).click();
    // (a format that reads these test files as RFC 4180 does, whether or not the loader applies it)
    await page.locator('#dataset-format-quotes').selectOption('relaxed');
    await shot('datasets-create');
    await page.getByRole('button', { name: 'Create dataset' }).click();

    await expect.poll(() => page.evaluate(() => location.hash), { timeout: UI_TIMEOUT }).toBe('#/datasets/products');
    await expect.poll(() => text('#notice'), { timeout: UI_TIMEOUT }).toContain('Created the dataset "products"');
    expect(await apiGet('/datasets/products')).toMatchObject({
      version: 1,
      key: ['sku'],
      format: { quotes: 'relaxed' },
      columns: [
        { name: 'sku', type: 'text', required: true, aliases: ['SKU code', HOSTILE] },
        { name: 'price', type: 'numeric(8,2)', required: false },
        { name: 'status', type: 'enum', required: false, values: ['new', 'used'] },
      ],
    });
    await expect.poll(() => page.locator('#view-dataset tr[data-key]').evaluateAll((rows) => rows.map((r) => (r as HTMLElement).dataset.key)), { timeout: UI_TIMEOUT }).toEqual(['sku', 'price', 'status']);
    expect(await text('#view-dataset .facts')).toMatch(/Key\s+sku/);
    // server data is text, never markup
    expect(await page.locator('#view-dataset tr[data-key="sku"] td').last().innerText()).toBe(`SKU code, ${HOSTILE}`);
    expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
    expect(await text('#view-dataset .facts')).toMatch(/Format\s+quotes relaxed/);

    await page.locator('#view-dataset .back').click();
    await expect.poll(() => page.locator('#datasets tr[data-key="products"] td').allInnerTexts(), { timeout: UI_TIMEOUT }).toEqual(['products', '1', '3', 'sku', expect.stringMatching(/^(just now|\d+ seconds? ago)$/)]);
    // What the API refuses is said in the form: a name that is not an identifier.
    await page.locator('#dataset-name').fill('Bad Name');
    await fillColumn('dataset-columns', 0, { name: 'a', type: 'text' });
    await page.getByRole('button', { name: 'Create dataset' }).click();
    await expect.poll(() => text('#dataset-create-result'), { timeout: UI_TIMEOUT }).toMatch(/^Not created: dataset name "Bad Name"/);
    expect((await apiGet('/datasets')).items.map((d: { name: string }) => d.name)).toEqual(['webhook_events', 'products']);
  });

  it('adds a column and an enum value with PUT (version 2); a destructive edit shows the server\'s 409 message and changes nothing', async () => {
    await page.goto(`${api.url}/#/datasets/products`);
    await page.locator('#dataset-edit').click();
    await page.locator('#dataset-edit-form').getByRole('button', { name: 'Add column' }).click();
    await fillColumn('dataset-edit-columns', 3, { name: 'note', type: 'text' });
    await editorRow('dataset-edit-columns', 2).locator('[data-field="values"]').fill('new, used, refurbished');
    await page.locator('#dataset-edit-format-dateFormat').selectOption('DD/MM/YYYY');
    await page.getByRole('button', { name: 'Save changes' }).click();
    await expect.poll(() => text('#dataset-action-status'), { timeout: UI_TIMEOUT }).toBe('Saved: version 2.');
    await expect.poll(() => page.locator('#view-dataset tr[data-key]').count()).toBe(4);
    const { rows } = await t.pool.query(
      `SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'products' AND column_name = 'note'`,
      [schema()],
    );
    expect(rows).toEqual([{ column_name: 'note', data_type: 'text' }]);
    const changed = await apiGet('/datasets/products');
    expect(changed.columns[2].values).toEqual(['new', 'used', 'refurbished']);
    expect(changed.format).toEqual({ quotes: 'relaxed', dateFormat: 'DD/MM/YYYY' });

    // Retyping price is not additive: the server's message, as it sent it, in the form.
    await page.locator('#dataset-edit').click();
    await editorRow('dataset-edit-columns', 1).locator('[data-field="type"]').selectOption('integer');
    const answer = page.waitForResponse((res) => res.request().method() === 'PUT' && res.url().endsWith('/datasets/products'));
    await page.getByRole('button', { name: 'Save changes' }).click();
    const refused = await answer;
    expect(refused.status()).toBe(409);
    const { error } = (await refused.json()) as { error: { code: string; message: string } };
    expect(error.code).toBe('dataset_change_refused');
    await expect.poll(() => text('#dataset-edit-result'), { timeout: UI_TIMEOUT }).toBe(`Not saved: ${error.message}`);
    expect(error.message).toContain('price');
    await shot('datasets-refused');
    expect((await apiGet('/datasets/products')).version).toBe(2);
  });

  it('delete is refused with the server\'s message while an upload is unfinished; the form uploads with dataset and mode upsert into the tenant table', async () => {
    // A first load through the API, not processed yet (no worker): the dataset is in use.
    const seed = await upload(api.url, key, { file: { content: 'sku,price,status\nA-1,1.00,new\nA-2,2.50,used\n' }, fields: { dataset: 'products' } });
    expect(seed.status, JSON.stringify(seed.body)).toBe(202);
    await page.goto(`${api.url}/#/datasets/products`);
    await page.getByRole('button', { name: 'Delete dataset' }).click();
    await expect.poll(() => text('#dataset-action-status'), { timeout: UI_TIMEOUT }).toMatch(/^Not deleted: 1 upload\(s\) of dataset "products" are not finished/);
    worker = await startTestWorker(t);
    expect((await waitForStatus(t, seed.body.uploadId, ['completed', 'failed'])).status).toBe('completed');

    // The form offers the tenant's datasets and the modes each allows.
    await page.getByRole('navigation').getByRole('link', { name: 'Uploads' }).click();
    await page.locator('#upload-form .uppy-Dashboard').waitFor();
    await expect.poll(() => page.locator('#upload-dataset option').evaluateAll((o) => o.map((x) => (x as HTMLOptionElement).value)), { timeout: UI_TIMEOUT }).toEqual(['webhook_events', 'products']);
    expect(await modeOptions()).toEqual(['append']);
    await page.locator('#upload-dataset').selectOption('products');
    expect(await modeOptions()).toEqual(['append', 'upsert', 'replace']);
    await page.locator('#upload-mode').selectOption('upsert');
    expect(await text('#upload-mode-help')).toContain('(key: sku)');

    const file = 'sku,status,price,note\nA-2,refurbished,3.75,changed\nA-3,new,10,added\n';
    await page.locator('#upload-form .uppy-Dashboard-input').first().setInputFiles({ name: 'products.csv', mimeType: 'text/csv', buffer: Buffer.from(file) });
    await page.getByRole('button', { name: 'Upload', exact: true }).click();
    await expect.poll(() => text('#upload-result'), { timeout: UI_TIMEOUT }).toContain('Uploaded products.csv');
    const href = await page.locator('#upload-result a').getAttribute('href');
    const uploadId = decodeURIComponent(/^#\/uploads\/(.+)$/.exec(href ?? '')![1]!);
    const state = await waitForStatus(t, uploadId, ['completed', 'failed']);
    expect(state.status, String(state.error)).toBe('completed');
    const recorded = await t.pool.query('SELECT dataset, mode, dataset_version, rows_inserted, rows_updated FROM uploads WHERE id = $1', [uploadId]);
    expect(recorded.rows[0]).toEqual({ dataset: 'products', mode: 'upsert', dataset_version: 2, rows_inserted: 1, rows_updated: 1 });
    const loaded = await t.pool.query(`SELECT sku, price::text, status, note, upload_id FROM ${table()} ORDER BY sku`);
    expect(loaded.rows).toEqual([
      { sku: 'A-1', price: '1.00', status: 'new', note: null, upload_id: seed.body.uploadId },
      { sku: 'A-2', price: '3.75', status: 'refurbished', note: 'changed', upload_id: uploadId },
      { sku: 'A-3', price: '10.00', status: 'new', note: 'added', upload_id: uploadId },
    ]);
    // Its page says where it went and how: the dataset (a link to it) and the mode with its counts.
    await page.locator('#upload-result a').click();
    await expect.poll(() => text('#view-detail .facts'), { timeout: UI_TIMEOUT }).toMatch(/Dataset\s+products · upsert: 1 inserted, 1 updated/);
    expect(await page.locator('#view-detail .facts a').getAttribute('href')).toBe('#/datasets/products');
    await page.goBack();
    // Ready for the next file: the built-in dataset again, append only.
    await expect.poll(() => page.locator('#upload-dataset').inputValue()).toBe('webhook_events');
    expect(await modeOptions()).toEqual(['append']);
    await shot('datasets-uploaded');
  });

  it('is readable at 390 px wide: the columns tables stack into labelled cards', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    const overflow = () => page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    await page.goto(`${api.url}/#/datasets/products`);
    await page.locator('#dataset-edit').click();
    await page.locator('#dataset-edit-form').waitFor();
    expect(await overflow()).toBeLessThanOrEqual(0);
    const label = await editorRow('dataset-edit-columns', 0).locator('td').nth(1).evaluate((td) => getComputedStyle(td, '::before').content);
    expect(label).toBe('"Type"');
    await shot('dataset-narrow');
    await page.locator('a.back').click();
    await page.locator('#dataset-form').waitFor();
    expect(await overflow()).toBeLessThanOrEqual(0);
    await shot('datasets-narrow');
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  it('infers a definition from a sample file (only its first MiB is sent), creates it in one click; the whole file loads through the form, and a confirmed replace leaves only the new rows', async () => {
    // ~1.9 MiB of readings: the page sends the first MiB (file.slice), the server judges it
    const lines = ['Meter ID,Read On,kWh,Estimated,Site'];
    for (let i = 0; i < 30_000; i++) {
      lines.push(`9b3f0c1e-7a2d-4e5f-8a6b-${String(i).padStart(12, '0')},2025-01-${String(1 + (i % 28)).padStart(2, '0')},${(i % 997) + 0.5},${i % 2 === 0},site ${i % 40}`);
    }
    const sample = Buffer.from(`${lines.join('\n')}\n`);
    expect(sample.length).toBeGreaterThan(1024 * 1024);
    await page.goto(`${api.url}/#/datasets`);
    await page.locator('#dataset-name').fill(''); // (left from the refused create): the file names the dataset
    await page.locator('#dataset-sample').setInputFiles({ name: 'meter-readings.csv', mimeType: 'text/csv', buffer: sample });
    const answer = page.waitForResponse((res) => res.request().method() === 'POST' && new URL(res.url()).pathname === '/datasets/infer');
    await page.getByRole('button', { name: 'Infer from sample' }).click();
    const res = await answer;
    expect(res.status()).toBe(200);
    expect(new URL(res.url()).searchParams.get('name')).toBe('meter-readings');
    // (a Blob body is not readable from the request: its length is, and the server judged all of it)
    const sent = await res.request().allHeaders();
    expect(sent['content-type']).toBe('text/csv');
    expect(sent['content-length']).toBe(String(1024 * 1024));
    const inferred = (await res.json()) as { definition: { name: string; columns: { name: string; type: string; required?: boolean }[]; key?: string[] }; sampledRows: number; sampleBytes: number };
    expect(inferred.sampleBytes).toBe(1024 * 1024);
    expect(inferred.definition.columns.map((c) => c.name)).toEqual(['meter_id', 'read_on', 'kwh', 'estimated', 'site']);

    // The table shows the proposal as it came; the name field takes the proposed identifier.
    await expect.poll(() => text('#dataset-infer-result'), { timeout: UI_TIMEOUT }).toContain(`Proposed 5 columns from ${inferred.sampledRows} rows`);
    expect(await page.locator('#dataset-name').inputValue()).toBe(inferred.definition.name);
    const shownTypes = await page.locator('#dataset-columns tbody tr').evaluateAll((rows) =>
      rows.map((r) => {
        const field = (name: string) => r.querySelector(`[data-field="${name}"]`) as HTMLInputElement;
        const p = field('precision').value;
        return [field('name').value, field('type').value === 'numeric' && p ? `numeric(${p},${field('scale').value || 0})` : field('type').value];
      }),
    );
    expect(shownTypes).toEqual(inferred.definition.columns.map((c) => [c.name, c.type]));
    await shot('datasets-inferred');

    await page.getByRole('button', { name: 'Create dataset' }).click();
    await expect.poll(() => page.evaluate(() => location.hash), { timeout: UI_TIMEOUT }).toBe(`#/datasets/${inferred.definition.name}`);
    const created = await apiGet(`/datasets/${inferred.definition.name}`);
    expect(created.columns.map((c: { name: string; type: string; required: boolean }) => [c.name, c.type, c.required])).toEqual(
      inferred.definition.columns.map((c) => [c.name, c.type, c.required ?? false]),
    );
    expect(created.key).toEqual(inferred.definition.key ?? null);

    // The whole file (past the sample) loads into it through the form: every row, none rejected.
    await page.getByRole('navigation').getByRole('link', { name: 'Uploads' }).click();
    await expect.poll(() => page.locator(`#upload-dataset option[value="${created.name}"]`).count(), { timeout: UI_TIMEOUT }).toBe(1);
    await page.locator('#upload-dataset').selectOption(created.name);
    expect(await modeOptions()).toEqual(['append', 'replace']);
    await page.locator('#upload-form .uppy-Dashboard-input').first().setInputFiles({ name: 'meter-readings.csv', mimeType: 'text/csv', buffer: sample });
    await page.getByRole('button', { name: 'Upload', exact: true }).click();
    await expect.poll(() => text('#upload-result'), { timeout: UI_TIMEOUT }).toContain('Uploaded meter-readings.csv');
    const uploadId = decodeURIComponent(/^#\/uploads\/(.+)$/.exec((await page.locator('#upload-result a').getAttribute('href')) ?? '')![1]!);
    const state = await waitForStatus(t, uploadId, ['completed', 'failed']);
    expect(state).toMatchObject({ status: 'completed', rows_processed: 30_000, rows_failed: 0 });
    const { rows } = await t.pool.query(`SELECT count(*)::int AS n, count(DISTINCT meter_id)::int AS meters, sum(kwh)::text AS kwh FROM "${schema()}"."${created.name}"`);
    const kwh = lines.slice(1).reduce((sum, line) => sum + Number(line.split(',')[2]) * 10, 0) / 10;
    expect(rows[0]).toEqual({ n: 30_000, meters: 30_000, kwh: kwh.toFixed(1) });

    // replace asks first: declined, nothing is sent; accepted, the file's rows are all the table holds
    await page.locator('#upload-dataset').selectOption(created.name);
    await page.locator('#upload-mode').selectOption('replace');
    const replacement = `${lines.slice(0, 3).join('\n')}\n`;
    await page.locator('#upload-form .uppy-Dashboard-input').first().setInputFiles({ name: 'two.csv', mimeType: 'text/csv', buffer: Buffer.from(replacement) });
    const creations: string[] = [];
    page.on('request', (req) => req.method() === 'POST' && new URL(req.url()).pathname === '/files/' && creations.push(req.headers()['upload-metadata'] ?? ''));
    confirmAnswer = false;
    await page.getByRole('button', { name: 'Upload', exact: true }).click();
    await expect.poll(() => dialogs.at(-1)).toBe(`Replace every row of "${created.name}" with the rows of two.csv?`);
    await page.waitForTimeout(500);
    expect(creations).toEqual([]);
    confirmAnswer = true;
    await page.getByRole('button', { name: 'Upload', exact: true }).click();
    await expect.poll(() => text('#upload-result'), { timeout: UI_TIMEOUT }).toContain('Uploaded two.csv');
    // tus metadata: each value base64 (tus 1.0 creation)
    const metadata = Object.fromEntries(creations[0]!.split(',').map((pair) => pair.split(' ')).map(([k, v]) => [k, Buffer.from(v ?? '', 'base64').toString()]));
    expect(metadata).toMatchObject({ dataset: created.name, mode: 'replace', name: 'two.csv' });
    const replaceId = decodeURIComponent(/^#\/uploads\/(.+)$/.exec((await page.locator('#upload-result a').getAttribute('href')) ?? '')![1]!);
    expect(await waitForStatus(t, replaceId, ['completed', 'failed'])).toMatchObject({ status: 'completed', rows_processed: 2 });
    const after = await t.pool.query(`SELECT meter_id::text, upload_id FROM "${schema()}"."${created.name}" ORDER BY meter_id`);
    expect(after.rows).toEqual(lines.slice(1, 3).map((line) => ({ meter_id: line.split(',')[0], upload_id: replaceId })));
  });

  it('deletes the dataset once no upload is unfinished: its table is dropped and the form no longer offers it', async () => {
    await page.goto(`${api.url}/#/datasets/products`);
    await page.getByRole('button', { name: 'Delete dataset' }).click();
    await expect.poll(() => page.evaluate(() => location.hash), { timeout: UI_TIMEOUT }).toBe('#/datasets');
    await expect.poll(() => text('#notice'), { timeout: UI_TIMEOUT }).toBe('Deleted the dataset "products".');
    await expect.poll(() => page.locator('#datasets tr[data-key="products"]').count(), { timeout: UI_TIMEOUT }).toBe(0);
    expect((await t.pool.query('SELECT to_regclass($1) AS t', [table()])).rows[0].t).toBeNull();
    await page.getByRole('navigation').getByRole('link', { name: 'Uploads' }).click();
    await expect.poll(() => page.locator('#upload-dataset option[value="products"]').count(), { timeout: UI_TIMEOUT }).toBe(0);
    expect(pageErrors).toEqual([]);
  });
});
