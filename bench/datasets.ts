// Throughput of a tenant's dataset (defined as data, src/datasets/) against the built-in webhook_events,
// in one run (the machine's speed drifts between runs): parse + validate + COPY bytes out, into a sink.
//   built-in   webhook_events' TypeScript definition over a generated events file
//   generic    the same columns and rules written as a dataset definition (JSON), compiled at run time
//   wide       a 12-column definition of mixed types (numeric(p,s), enum, boolean, date, a default …)
//   --formats  also: the 12-column file spelled `;` + decimal comma + DD/MM/YYYY, and encoded as Windows-1252
//              and UTF-16 (decoded by iconv-lite before the transform), against the same file in RFC 4180 / UTF-8
// Usage: npm run bench:datasets -- [--rows 1000000] [--runs 3] [--formats]
//        npm run bench:datasets -- --modes [--rows 200000] [--runs 2]   (loading modes, against PostgreSQL:
//        upsert of N rows, half new and half existing, against append of the same rows; see lib/dataset-modes.ts)
import { createReadStream, createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { compileDefinition, normaliseDefinition, type DatasetInput } from '../src/datasets/definition.ts';
import { webhookEventsStream } from '../src/datagen/webhook-events.ts';
import iconv from 'iconv-lite';
import { createCopyTransform, decoderFor } from '../src/ingest/csv/index.ts';
import { DEFAULT_INPUT_FORMAT, resolveInputFormat, type InputFormat } from '../src/ingest/csv/input-format.ts';
import { webhookEvents, type DatasetDef } from '../src/ingest/datasets/index.ts';
import { benchModes } from './lib/dataset-modes.ts';

const READ_CHUNK = 64 * 1024;
const TENANT = '00000000-0000-4000-8000-000000000000';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

/** webhook_events' own rules, as a tenant would write them. */
const eventsAsData: DatasetInput = {
  name: 'events_copy',
  columns: [
    { name: 'event_id', type: 'uuid', required: true },
    { name: 'event_type', type: 'text', required: true, maxLength: 100 },
    { name: 'source', type: 'text' },
    { name: 'customer_id', type: 'text' },
    { name: 'amount_cents', type: 'bigint' },
    { name: 'currency', type: 'text', pattern: '^[A-Z]{3}$' },
    { name: 'occurred_at', type: 'timestamptz', required: true },
    { name: 'payload', type: 'jsonb' },
  ],
};

const wide: DatasetInput = {
  name: 'orders',
  columns: [
    { name: 'order_id', type: 'uuid', required: true },
    { name: 'customer', type: 'text', maxLength: 40 },
    { name: 'qty', type: 'integer', required: true },
    { name: 'units', type: 'bigint' },
    { name: 'price', type: 'numeric(12,2)' },
    { name: 'rate', type: 'numeric' },
    { name: 'paid', type: 'boolean', default: 'false' },
    { name: 'status', type: 'enum', values: ['open', 'paid', 'shipped', 'returned'] },
    { name: 'ordered_on', type: 'date' },
    { name: 'updated_at', type: 'timestamptz' },
    { name: 'country', type: 'text', pattern: '^[A-Z]{2}$' },
    { name: 'meta', type: 'jsonb' },
  ],
};

/** The wide file spelled the European way: semicolons, decimal commas, DD/MM/YYYY. */
const EUROPEAN = resolveInputFormat({ delimiter: ';', decimalSeparator: ',', dateFormat: 'DD/MM/YYYY' });

/** Rows `from`..`to` of the wide file; order_id is unique per row number, `variant` shifts the other values. */
function* wideRows(rows: number, from = 1, variant = 0, format: InputFormat = DEFAULT_INPUT_FORMAT): Generator<string> {
  const d = format.delimiter;
  const eu = format === EUROPEAN;
  yield wide.columns.map((c) => c.name).join(d) + '\n';
  const statuses = ['open', 'paid', 'shipped', 'returned'];
  let lines = '';
  for (let n = from; n < from + rows; n++) {
    const hex = n.toString(16).padStart(12, '0');
    const i = n + variant;
    const day = String(1 + (i % 28)).padStart(2, '0');
    const point = (s: string) => (eu ? s.replace('.', ',') : s);
    const date = eu ? `${day}/03/2025` : `2025-03-${day}`;
    lines +=
      [
        `0b7f2c4e-1111-4a2b-a333-${hex}`, `customer ${i % 997}`, i % 50, i * 7, point(String((i % 100000) / 100)), point(`0.${i % 9999}`),
        i % 3 === 0 ? '' : i % 2 === 0 ? 'true' : 'f', statuses[i % 4], date, `${date}T10:${String(i % 60).padStart(2, '0')}:00Z`,
        i % 5 === 0 ? 'DE' : 'FR', `"{""n"": ${i % 100}}"`,
      ].join(d) + '\n';
    if (n % 1000 === 0) {
      yield lines;
      lines = '';
    }
  }
  if (lines) yield lines;
}

function sink(): Writable {
  return new Writable({ write: (_chunk, _enc, cb) => cb() });
}

async function run(def: DatasetDef, file: string, format: InputFormat = DEFAULT_INPUT_FORMAT): Promise<{ rows: number; seconds: number; rejected: number }> {
  const transform = createCopyTransform(def, { onHeader: () => {}, onReject: () => {}, format });
  const decoder = decoderFor(format.encoding);
  const t0 = process.hrtime.bigint();
  await pipeline([createReadStream(file, { highWaterMark: READ_CHUNK }), ...(decoder ? [decoder] : []), transform, sink()]);
  return { rows: transform.stats.records, seconds: Number(process.hrtime.bigint() - t0) / 1e9, rejected: transform.stats.rowsRejected };
}

async function main(): Promise<void> {
  const modes = process.argv.includes('--modes');
  const rows = arg('rows', modes ? 200_000 : 1_000_000);
  const runs = arg('runs', modes ? 2 : 3);
  const dir = mkdtempSync(path.join(tmpdir(), 'bench-datasets-'));
  if (modes) {
    try {
      await benchModes({
        rows,
        runs,
        dir,
        keyed: { ...wide, key: ['order_id'] },
        writeFile: (file, from, to, variant) => pipeline(Readable.from(wideRows(to - from + 1, from, variant)), createWriteStream(file)),
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    return;
  }
  const events = path.join(dir, 'events.csv');
  const orders = path.join(dir, 'orders.csv');
  try {
    await pipeline(webhookEventsStream({ rows }), createWriteStream(events));
    await pipeline(Readable.from(wideRows(rows)), createWriteStream(orders));
    const generic = compileDefinition(normaliseDefinition(eventsAsData), TENANT, 1);
    const wideDef = compileDefinition(normaliseDefinition(wide), TENANT, 1);
    const cases: [string, DatasetDef, string, InputFormat?][] = [
      ['built-in webhook_events', webhookEvents, events],
      ['generic, same rules as data', generic, events],
      ['generic, 12 mixed columns', wideDef, orders],
    ];
    if (process.argv.includes('--formats')) {
      const european = path.join(dir, 'orders-eu.csv');
      await pipeline(Readable.from(wideRows(rows, 1, 0, EUROPEAN)), createWriteStream(european));
      const cp1252 = path.join(dir, 'orders-1252.csv');
      await pipeline(Readable.from(wideRows(rows)), iconv.encodeStream('windows-1252'), createWriteStream(cp1252));
      const utf16 = path.join(dir, 'orders-utf16.csv');
      await pipeline(Readable.from(wideRows(rows)), iconv.encodeStream('utf-16le', { addBOM: true }), createWriteStream(utf16));
      cases.push(
        ['12 columns, ; , DD/MM/YYYY', wideDef, european, EUROPEAN],
        ['12 columns, Windows-1252', wideDef, cp1252, resolveInputFormat({ encoding: 'windows-1252' })],
        ['12 columns, UTF-16LE', wideDef, utf16, resolveInputFormat({ encoding: 'utf-16' })],
      );
    }
    const best = new Map<string, { rows: number; seconds: number; rejected: number; mb: number }>();
    for (let i = 0; i < runs; i++) {
      for (const [name, def, file, format] of cases) {
        const r = await run(def, file, format);
        const prev = best.get(name);
        if (!prev || r.seconds < prev.seconds) best.set(name, { ...r, mb: statSync(file).size / 1e6 });
      }
    }
    console.log(`${rows} rows per file, best of ${runs} interleaved runs (parse + validate + COPY bytes, into a sink)\n`);
    for (const [name, r] of best) {
      console.log(`${name.padEnd(30)} ${Math.round(r.rows / r.seconds).toLocaleString('en').padStart(11)} rows/s  ${(r.mb / r.seconds).toFixed(0).padStart(4)} MB/s  (${r.rejected} rejected)`);
    }
    const builtIn = best.get(cases[0]![0])!;
    const same = best.get(cases[1]![0])!;
    const mixed = best.get(cases[2]![0])!;
    console.log(`\nratio generic / built-in, same file and rules: ${(builtIn.seconds / same.seconds).toFixed(2)}×`);
    console.log(`ratio 12 mixed columns / built-in (rows/s):     ${(mixed.rows / mixed.seconds / (builtIn.rows / builtIn.seconds)).toFixed(2)}×`);
    for (const [name] of cases.slice(3)) {
      const r = best.get(name)!;
      console.log(`ratio ${name} / 12 mixed columns (rows/s): ${(r.rows / r.seconds / (mixed.rows / mixed.seconds)).toFixed(2)}×`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
