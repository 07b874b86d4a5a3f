// The `wide` bench dataset: a tenant's definition of 20 columns of mixed types (uuid, bigint, integer,
// numeric(p,s), numeric, boolean with a default, enum, date, timestamptz, text with maxLength and with a
// pattern, jsonb) and a generator of its CSV, written to a file under the bench's temp folder.
import { createWriteStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { DatasetInput } from '../../src/datasets/definition.ts';

/** The definition, without a key (append); `{ ...WIDE, key: ['order_id'] }` is the upsert variant. */
export const WIDE: DatasetInput = {
  name: 'wide',
  columns: [
    { name: 'order_id', type: 'uuid', required: true },
    { name: 'order_no', type: 'bigint', required: true },
    { name: 'customer', type: 'text', maxLength: 40 },
    { name: 'email', type: 'text' },
    { name: 'qty', type: 'integer', required: true },
    { name: 'units', type: 'bigint' },
    { name: 'price', type: 'numeric(12,2)' },
    { name: 'rate', type: 'numeric' },
    { name: 'discount', type: 'numeric(5,2)' },
    { name: 'paid', type: 'boolean', default: 'false' },
    { name: 'status', type: 'enum', values: ['open', 'paid', 'shipped', 'returned'] },
    { name: 'ordered_on', type: 'date' },
    { name: 'shipped_on', type: 'date' },
    { name: 'updated_at', type: 'timestamptz' },
    { name: 'country', type: 'text', pattern: '^[A-Z]{2}$' },
    { name: 'city', type: 'text' },
    { name: 'zip', type: 'text', maxLength: 10 },
    { name: 'sku', type: 'text' },
    { name: 'weight', type: 'numeric(8,3)' },
    { name: 'meta', type: 'jsonb' },
  ],
};

export const WIDE_COLUMNS: readonly string[] = WIDE.columns.map((c) => c.name);

const STATUSES = ['open', 'paid', 'shipped', 'returned'];
const CITIES = ['Berlin', 'Paris', 'Lyon', 'São Paulo', 'Zürich', 'New York, NY'];

/**
 * CSV of rows with keys `from`..`from + rows - 1` (header first), in chunks of 1000 rows. order_id and
 * order_no follow the row's key (so two files with overlapping keys upsert the same rows); `variant`
 * shifts the other values. Every row is valid.
 */
export function* wideRows(rows: number, from = 1, variant = 0): Generator<string> {
  yield WIDE_COLUMNS.join(',') + '\n';
  let lines = '';
  for (let n = from; n < from + rows; n++) {
    const i = n + variant;
    const day = String(1 + (i % 28)).padStart(2, '0');
    const city = CITIES[i % CITIES.length]!;
    lines +=
      `0b7f2c4e-1111-4a2b-a333-${n.toString(16).padStart(12, '0')},${n},customer ${i % 997},c${i % 5000}@example.com,` +
      `${i % 50},${i * 7},${(i % 100000) / 100},0.${i % 9999},${i % 30}.5,${i % 3 === 0 ? '' : i % 2 === 0 ? 'true' : 'f'},` +
      `${STATUSES[i % 4]},2025-03-${day},${i % 4 === 0 ? '' : `2025-04-${day}`},2025-03-${day}T10:${String(i % 60).padStart(2, '0')}:00Z,` +
      `${i % 5 === 0 ? 'DE' : 'FR'},${city.includes(',') ? `"${city}"` : city},${10000 + (i % 89999)},SKU-${i % 7919},${(i % 50000) / 1000},` +
      `"{""n"": ${i % 100}, ""tag"": ""t${i % 7}""}"\n`;
    if (n % 1000 === 0) {
      yield lines;
      lines = '';
    }
  }
  if (lines) yield lines;
}

/** Writes wideRows(rows, from, variant) to `file`. */
export function writeWideFile(file: string, rows: number, from = 1, variant = 0): Promise<void> {
  return pipeline(Readable.from(wideRows(rows, from, variant)), createWriteStream(file));
}
