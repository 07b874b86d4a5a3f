// The generic validators against PostgreSQL itself: for random dataset definitions (the DDL the service
// writes) and random values around each type's edges, a value the loader accepts must be one PostgreSQL
// stores (else one value would abort a whole COPY), and a value refused as out of range, too long or
// not in the enum must be one PostgreSQL refuses too (those checks are exact, not merely safe).
// Seeded: DATASET_SEED=<printed seed> reproduces a run.
import { randomInt, randomUUID } from 'node:crypto';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTableSql } from '../../src/datasets/ddl.ts';
import { checkValue, compileDefinition, normaliseDefinition, type DatasetInput } from '../../src/datasets/definition.ts';
import { RESERVED_WORDS } from '../../src/datasets/identifiers.ts';
import { createTestEnv, type TestEnv } from '../helpers/env.ts';

const SEED = process.env.DATASET_SEED ? Number(process.env.DATASET_SEED) : randomInt(2 ** 31);
const DEFINITIONS = 24;
const VALUES_PER_COLUMN = 150;
/** Codes that claim PostgreSQL would refuse the value: they must never be a false alarm. */
const EXACT_CODES = new Set(['out_of_range', 'too_long', 'invalid_enum']);

let t: TestEnv;
let client: pg.PoolClient;
beforeAll(async () => {
  t = await createTestEnv();
  client = await t.pool.connect();
  // One INSERT per value, in its own subtransaction: the literal is read by the column type's input
  // function with the column's typmod and CHECKs, as COPY reads it.
  await client.query(`CREATE FUNCTION pg_temp.accepts(tbl text, col text, v text) RETURNS boolean LANGUAGE plpgsql AS $$
    BEGIN
      EXECUTE format('INSERT INTO %s (upload_id, line_number, %I) VALUES (gen_random_uuid(), 0, %L)', tbl, col, v);
      RETURN true;
    EXCEPTION WHEN others THEN
      RETURN false;
    END $$`);
});
afterAll(async () => {
  client?.release();
  await t?.close();
});

let seed = SEED;
function rnd(n: number): number {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff;
  return (seed >>> 8) % n;
}
const pick = <T>(xs: readonly T[]): T => xs[rnd(xs.length)]!;
const digits = (n: number) => Array.from({ length: n }, () => String(rnd(10))).join('');

function mutate(v: string): string {
  const chars = [...v];
  const at = rnd(chars.length + 1);
  const ch = pick(['0', '9', '5', '-', '+', '.', 'e', ' ', 'x', 'é', '"', ':', 'T', 'Z', '1']);
  const op = rnd(3);
  if (op === 0) chars.splice(at, 1);
  else if (op === 1) chars.splice(at, 0, ch);
  else chars.splice(at, 1, ch);
  return chars.join('');
}

function numberText(precision: number, scale: number): string {
  const sign = pick(['', '', '-', '+']);
  const intLen = rnd(precision - scale + 3);
  const fracLen = rnd(scale + 3);
  const nines = rnd(4) === 0; // edge of rounding: 99.995 → 100.00
  const int = nines ? '9'.repeat(intLen) : digits(intLen);
  const frac = nines ? '9'.repeat(fracLen) + '5' : digits(fracLen);
  let text = `${sign}${int}${fracLen || nines ? '.' + frac : ''}`;
  if (rnd(6) === 0) text += `e${pick(['', '-', '+'])}${rnd(6)}`;
  return text === sign ? `${sign}0` : text;
}

const GENERATORS: Record<string, (c: { type: string; maxLength?: number; values?: string[]; precision: number; scale: number }) => string> = {
  integer: () => pick(['2147483647', '-2147483648', '2147483648', '-2147483649', `${pick(['', '-', '+', '00'])}${digits(1 + rnd(11))}`]),
  bigint: () => pick(['9223372036854775807', '-9223372036854775808', '9223372036854775808', `${pick(['', '-', '0'])}${digits(1 + rnd(20))}`]),
  numeric: (c) => numberText(c.precision, c.scale),
  boolean: () => pick(['true', 'FALSE', 't', 'f', 'yes', 'No', '1', '0', 'on', 'off', 'y', 'tru']),
  uuid: () => pick([randomUUID(), randomUUID().toUpperCase(), randomUUID().replaceAll('-', '')]),
  date: () => `${String(1 + rnd(9999)).padStart(4, '0')}-${String(rnd(14)).padStart(2, '0')}-${String(rnd(33)).padStart(2, '0')}`,
  timestamptz: () =>
    `${2000 + rnd(30)}-0${1 + rnd(9)}-${String(1 + rnd(29)).padStart(2, '0')}${pick(['T', ' '])}${String(rnd(25)).padStart(2, '0')}:${String(rnd(61)).padStart(2, '0')}` +
    pick(['', `:${String(rnd(61)).padStart(2, '0')}`, `:00.${digits(1 + rnd(9))}`]) + pick(['', 'Z', '+02:00', '-0530', '+16', '+01']),
  jsonb: () => pick(['{"a":1}', '[1,2,{"b":null}]', '"é"', '1e5', 'true', '{"k":"\\u0041"}', '[]']),
  text: (c) => Array.from({ length: Math.max(1, (c.maxLength ?? 8) - 2 + rnd(5)) }, () => pick(['a', 'é', '😀', 'z', '"'])).join(''),
  enum: (c) => pick([...c.values!, c.values![0]!.toUpperCase(), `${c.values![0]} x`, 'other']),
};

function randomDefinition(n: number): DatasetInput {
  const columns = Array.from({ length: 2 + rnd(6) }, (_, i) => {
    const base = pick(['integer', 'bigint', 'numeric', 'numeric', 'boolean', 'uuid', 'date', 'timestamptz', 'jsonb', 'text', 'enum']);
    const col: DatasetInput['columns'][number] = { name: `c${i}_${base}`, type: base };
    if (base === 'numeric' && rnd(4) !== 0) {
      const precision = 1 + rnd(12);
      col.type = `numeric(${precision},${rnd(precision + 1)})`;
    }
    if (base === 'text' && rnd(2) === 0) col.maxLength = 1 + rnd(6);
    if (base === 'enum') col.values = ['new', 'paid', 'Ünïcode'].slice(0, 1 + rnd(3));
    return col;
  });
  return { name: `d${n}`, columns };
}

describe('generic validators agree with PostgreSQL', () => {
  it('keeps the reserved-word list in step with the server (categories R and T)', async () => {
    const { rows } = await client.query<{ word: string }>(`SELECT word FROM pg_get_keywords() WHERE catcode IN ('R', 'T')`);
    const missing = rows.map((r) => r.word).filter((w) => !RESERVED_WORDS.has(w));
    expect(missing).toEqual([]);
  });

  it(`accepts only what PostgreSQL stores, on ${DEFINITIONS} random definitions (seed ${SEED})`, async () => {
    const tenantId = randomUUID();
    let checked = 0;
    let accepted = 0;
    const disagreements: string[] = [];
    for (let n = 0; n < DEFINITIONS; n++) {
      const spec = normaliseDefinition(randomDefinition(n));
      const def = compileDefinition(spec, tenantId, 1);
      for (const statement of createTableSql(def.schema!, spec)) await client.query(statement);
      const table = `"${def.schema}"."${def.table}"`;
      for (const col of def.columns) {
        const spelled = { ...col, values: col.values ? [...col.values] : undefined, precision: col.precision ?? 12, scale: col.scale ?? 3 };
        const values = [...new Set(Array.from({ length: VALUES_PER_COLUMN }, () => {
          const v = GENERATORS[col.type]!(spelled);
          return (rnd(4) === 0 ? mutate(v) : v).trim();
        }))].filter((v) => v !== '');
        const { rows } = await client.query<{ v: string; ok: boolean }>(
          'SELECT v, pg_temp.accepts($1, $2, v) AS ok FROM unnest($3::text[]) AS v',
          [table, col.name, values],
        );
        for (const { v, ok } of rows) {
          const code = checkValue(col, v);
          checked++;
          if (code === null) accepted++;
          if (code === null && !ok) disagreements.push(`${spec.name}.${col.name} ${spec.columns.find((c) => c.name === col.name)!.type}: ${JSON.stringify(v)} accepted, PostgreSQL refuses it`);
          if (code !== null && EXACT_CODES.has(code) && ok) disagreements.push(`${spec.name}.${col.name}: ${JSON.stringify(v)} refused as ${code}, PostgreSQL stores it`);
        }
      }
    }
    expect(disagreements.slice(0, 20)).toEqual([]);
    expect(checked).toBeGreaterThan(DEFINITIONS * 2 * 30);
    // both verdicts well represented, or the test would prove little
    expect(accepted / checked).toBeGreaterThan(0.2);
    expect(accepted / checked).toBeLessThan(0.9);
  });
});
