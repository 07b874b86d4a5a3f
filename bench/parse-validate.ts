// Parse + validate throughput, measured in one run (the machine's speed drifts between runs):
//   csv-parse (arrays, parse only)  vs  createCopyTransform (full validation + COPY bytes out).
// Usage: npx tsx bench/parse-validate.ts [--rows 1000000] [--runs 3]
// (a 'read only' row shows what the file reads alone cost)
// The file is generated once into a temp file so generation is not timed; both pipelines then
// stream it with the same 64 KiB reads into a sink that discards.

import { createReadStream, createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parse } from 'csv-parse';
import { webhookEventsStream } from '../src/datagen/webhook-events.ts';
import { createCopyTransform } from '../src/ingest/csv/index.ts';
import { webhookEvents } from '../src/ingest/datasets/index.ts';

const READ_CHUNK = 64 * 1024;

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

async function generate(rows: number, file: string): Promise<void> {
  await pipeline(webhookEventsStream({ rows }), createWriteStream(file));
}

function sink(objectMode: boolean): Writable {
  return new Writable({ objectMode, write: (_chunk, _enc, cb) => cb() });
}

interface Result {
  rows: number;
  seconds: number;
  note: string;
}

/** Baseline: the same reads into the sink, no parsing — what file I/O alone costs. */
async function runReadOnly(file: string, rows: number): Promise<Result> {
  const t0 = process.hrtime.bigint();
  await pipeline(createReadStream(file, { highWaterMark: READ_CHUNK }), sink(false));
  return { rows, seconds: Number(process.hrtime.bigint() - t0) / 1e9, note: 'read + discard, no parsing' };
}

async function runCsvParse(file: string): Promise<Result> {
  const parser = parse({ from_line: 2 });
  const t0 = process.hrtime.bigint();
  await pipeline(createReadStream(file, { highWaterMark: READ_CHUNK }), parser, sink(true));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  return { rows: parser.info.records, seconds, note: 'parse only' };
}

async function runTransform(file: string): Promise<Result> {
  let rejects = 0;
  const transform = createCopyTransform(webhookEvents, { onHeader: () => {}, onReject: () => rejects++ });
  const t0 = process.hrtime.bigint();
  await pipeline(createReadStream(file, { highWaterMark: READ_CHUNK }), transform, sink(false));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const s = transform.stats;
  const note = `validated; ${s.rowsAccepted} accepted, ${rejects} rejected, ${s.rowsRebuilt} rebuilt, ${(s.bytesOut / 1e6).toFixed(0)} MB out`;
  return { rows: s.records, seconds, note };
}

async function main(): Promise<void> {
  const rows = arg('rows', 1_000_000);
  const runs = arg('runs', 3);
  const dir = mkdtempSync(path.join(tmpdir(), 'parse-validate-'));
  const file = path.join(dir, 'events.csv');
  try {
    await generate(rows, file);
    console.log(`${rows} rows, ${(statSync(file).size / 1e6).toFixed(0)} MB, best of ${runs} runs (interleaved)\n`);
    const best: Record<string, Result> = {};
    const keep = (name: string, r: Result): void => {
      const prev = best[name];
      if (!prev || r.seconds < prev.seconds) best[name] = r;
    };
    for (let i = 0; i < runs; i++) {
      keep('read only', await runReadOnly(file, rows));
      keep('csv-parse (arrays)', await runCsvParse(file));
      keep('copy transform', await runTransform(file));
    }
    const base = best['csv-parse (arrays)']!;
    const rate = (r: Result): number => r.rows / r.seconds;
    console.log('| pipeline | rows | s | rows/s | vs csv-parse | note |');
    console.log('|---|---:|---:|---:|---:|---|');
    for (const [name, r] of Object.entries(best)) {
      const cells = [name, r.rows, r.seconds.toFixed(2), Math.round(rate(r)).toLocaleString('en-US'), (rate(r) / rate(base)).toFixed(2), r.note];
      console.log(`| ${cells.join(' | ')} |`);
    }
    console.log(`\npeak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
