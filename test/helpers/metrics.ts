// Reading /metrics in tests: the Prometheus text of a scrape, and one sample out of it.
import { expect } from 'vitest';
import { request } from './http.ts';

/** The value of one sample in Prometheus text format, or undefined when it is absent. */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1], l[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[3]);
  }
  return undefined;
}

/** GET `base`/metrics, asserting a 200 in Prometheus text format. */
export async function scrape(base: string): Promise<string> {
  const res = await request(base, null, 'GET', '/metrics');
  expect(res.status).toBe(200);
  expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
  return res.text;
}

/** The database-backed gauges of a scrape, keyed like `uploads:completed`, `rows_loaded:`. */
export function databaseGauges(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const status of ['uploaded', 'processing', 'completed', 'failed']) out[`uploads:${status}`] = sample(text, 'stream_api_uploads', { status })!;
  for (const status of ['pending', 'sent', 'failed', 'skipped']) out[`deliveries:${status}`] = sample(text, 'stream_api_deliveries', { status })!;
  out['rows_loaded:'] = sample(text, 'stream_api_rows_loaded')!;
  out['rows_rejected:'] = sample(text, 'stream_api_rows_rejected')!;
  return out;
}

/** The same numbers aggregated from the tables themselves: what the gauges must equal. */
export const TRUTH_SQL = `
  SELECT 'uploads:' || s AS key, (SELECT count(*) FROM uploads WHERE status = s)::int AS n
    FROM unnest(ARRAY['uploaded', 'processing', 'completed', 'failed']) s
  UNION ALL
  SELECT 'deliveries:' || s, (SELECT count(*) FROM deliveries WHERE delivery_status = s)::int
    FROM unnest(ARRAY['pending', 'sent', 'failed', 'skipped']) s
  UNION ALL SELECT 'rows_loaded:', coalesce(sum(rows_processed), 0)::bigint FROM uploads WHERE status = 'completed'
  UNION ALL SELECT 'rows_rejected:', coalesce(sum(rows_failed), 0)::bigint FROM uploads WHERE status IN ('completed', 'failed')`;
