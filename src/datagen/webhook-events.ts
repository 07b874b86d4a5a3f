// A deterministic generator of `webhook_events` CSV files: the data of the specification's acceptance
// test (5 million rows ≈ 1 GB), of the benchmarks and of the tests. Same options → same bytes.
//
// Columns: event_id,event_type,source,customer_id,amount_cents,currency,occurred_at,payload (RFC 4180,
// LF line ends, the JSON payload quoted with doubled quotes). With the default seed (42) the output is
// byte for byte that of the generator the project's measurements were first made with.
//
// `badRatio` breaks that fraction of rows, each in one way the loader rejects (see BAD_ROW_KINDS); the
// choice comes from a second random stream, so the rows left intact are the same as without it.
import { Readable } from 'node:stream';

export const WEBHOOK_EVENTS_HEADER = 'event_id,event_type,source,customer_id,amount_cents,currency,occurred_at,payload';

/** How a broken row is broken: each name is the reject code the loader records for such a row. */
export const BAD_ROW_KINDS = [
  'invalid_uuid',
  'required',
  'invalid_integer',
  'out_of_range',
  'pattern',
  'invalid_timestamp',
  'invalid_json',
  'field_count',
  'too_long',
  'nul_byte',
  'malformed_csv',
  'invalid_utf8',
] as const;

export type BadRowKind = (typeof BAD_ROW_KINDS)[number];

/** Turns a row's 8 fields (the payload still quoted) into a broken row. */
export const BREAKERS: Readonly<Record<BadRowKind, (fields: readonly string[]) => string[] | Buffer>> = {
  invalid_uuid: (f) => replaced(f, 0, 'not-a-uuid'),
  required: (f) => replaced(f, 1, '   '),
  invalid_integer: (f) => replaced(f, 4, '12.5x'),
  out_of_range: (f) => replaced(f, 4, '99999999999999999999'),
  pattern: (f) => replaced(f, 5, 'usd1'),
  invalid_timestamp: (f) => replaced(f, 6, '2025-02-30T00:00:00Z'),
  invalid_json: (f) => replaced(f, 7, '"{not json}"'),
  field_count: (f) => f.slice(0, 7),
  too_long: (f) => replaced(f, 1, 'x'.repeat(101)),
  nul_byte: (f) => replaced(f, 3, 'cus\u0000x'),
  malformed_csv: (f) => replaced(f, 3, 'cus_"abc'),
  invalid_utf8: (f) =>
    Buffer.concat([Buffer.from(f.slice(0, 2).join(',') + ','), Buffer.from([0xff, 0xfe]), Buffer.from(',' + f.slice(3).join(','))]),
};

function replaced(fields: readonly string[], index: number, value: string): string[] {
  const copy = [...fields];
  copy[index] = value;
  return copy;
}

export interface GenerateOptions {
  /** data rows after the header (≥ 0) */
  rows: number;
  /** integer seed of the row values (default 42) */
  seed?: number;
  /** fraction of rows to break, 0–1 (default 0) */
  badRatio?: number;
  /** told of every broken row: its physical line (the header is line 1) and how it was broken */
  onBadRow?: (line: number, kind: BadRowKind) => void;
  /** approximate bytes per yielded chunk (default 1 MiB) */
  chunkBytes?: number;
}

const TYPES = ['invoice.paid', 'invoice.failed', 'customer.created', 'charge.refunded', 'subscription.updated'];
const SOURCES = ['stripe', 'github', 'shopify', 'twilio'];
const CURRENCIES = ['USD', 'EUR', 'GBP', 'JPY'];
const BASE_TIME = Date.UTC(2025, 0, 1);

/**
 * The CSV as Buffer chunks of about `chunkBytes`, header first. Throws RangeError on invalid options.
 * Pull-based: a consumer that stops pulling stops the generation (backpressure through Readable.from).
 */
export function* webhookEventsChunks(opts: GenerateOptions): Generator<Buffer> {
  const { rows, seed = 42, badRatio = 0, chunkBytes = 1 << 20 } = opts;
  if (!Number.isSafeInteger(rows) || rows < 0) throw new RangeError('rows must be a non-negative integer');
  if (!Number.isSafeInteger(seed)) throw new RangeError('seed must be an integer');
  if (!(badRatio >= 0 && badRatio <= 1)) throw new RangeError('badRatio must be between 0 and 1');

  // The values' stream: a 31-bit LCG, evaluated exactly as the original generator did (float product).
  let state = seed;
  const rnd = () => (state = (state * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  const hex = (n: number) => {
    let s = '';
    for (let i = 0; i < n; i++) s += '0123456789abcdef'[(rnd() * 16) | 0];
    return s;
  };
  const bad = mulberry32(seed ^ 0x5bd1e995);

  let text = WEBHOOK_EVENTS_HEADER + '\n';
  const pending: Buffer[] = [];
  for (let i = 0; i < rows; i++) {
    const id = `${hex(8)}-${hex(4)}-4${hex(3)}-a${hex(3)}-${hex(12)}`;
    const type = TYPES[(rnd() * TYPES.length) | 0]!;
    const payload = JSON.stringify({ note: `order ${i}, "gift" wrap`, items: (rnd() * 9 + 1) | 0, tags: ['a', 'b'] }).replace(/"/g, '""');
    const source = SOURCES[(rnd() * 4) | 0]!;
    const customer = `cus_${hex(14)}`;
    const amount = String((rnd() * 100000) | 0);
    const currency = CURRENCIES[(rnd() * 4) | 0]!;
    const fields = [id, type, source, customer, amount, currency, new Date(BASE_TIME + i * 1000).toISOString(), `"${payload}"`];
    if (badRatio > 0 && bad() < badRatio) {
      const kind = BAD_ROW_KINDS[Math.floor(bad() * BAD_ROW_KINDS.length)]!;
      opts.onBadRow?.(i + 2, kind);
      const broken = BREAKERS[kind](fields);
      if (Buffer.isBuffer(broken)) {
        pending.push(Buffer.from(text), broken, Buffer.from('\n'));
        text = '';
        continue;
      }
      text += broken.join(',') + '\n';
    } else {
      text += fields.join(',') + '\n';
    }
    if (text.length > chunkBytes) {
      pending.push(Buffer.from(text));
      text = '';
    }
    if (pending.length > 0 && text === '') yield flush(pending);
  }
  if (text !== '') pending.push(Buffer.from(text));
  if (pending.length > 0) yield flush(pending);
}

function flush(pending: Buffer[]): Buffer {
  const out = pending.length === 1 ? pending[0]! : Buffer.concat(pending);
  pending.length = 0;
  return out;
}

/** The same chunks as a Readable stream. */
export function webhookEventsStream(opts: GenerateOptions): Readable {
  return Readable.from(webhookEventsChunks(opts), { objectMode: false });
}

/** A small seeded PRNG for decisions (not values): uniform in [0, 1). */
function mulberry32(seed: number): () => number {
  let a = seed | 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
