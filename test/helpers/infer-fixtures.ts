// Measures dataset inference (src/datasets/infer.ts) against the hand-written truth of the sample files in
// test/fixtures/infer/: each `<name>.csv` has a `<name>.truth.json` with the dialect it is written in and
// the type each column holds, written from what the data is (not from the inference's output). Used by
// test/unit/datasets-infer.test.ts (which asserts a bar) and `npm run bench:infer` (which prints the report).
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { inferDataset, type Inference } from '../../src/datasets/infer.ts';

export const FIXTURES_DIR = fileURLToPath(new URL('../fixtures/infer/', import.meta.url));

/** The dialect keys a truth file states, as the input format names them. */
export const DIALECT_KEYS = ['delimiter', 'encoding', 'quotes', 'dateFormat', 'decimalSeparator'] as const;

export interface Truth {
  dialect: Record<(typeof DIALECT_KEYS)[number], string>;
  /** column name → base type (text, integer, bigint, numeric, boolean, uuid, date, timestamptz, jsonb) */
  columns: Record<string, string>;
}

export interface FixtureResult {
  file: string;
  inference: Inference;
  /** dialect keys whose value differs: "key: expected → got" */
  dialectMismatches: string[];
  columns: number;
  columnMatches: number;
  /** "column: expected → got" (got "missing" when no column has the name) */
  columnMismatches: string[];
}

export interface Measurement {
  files: FixtureResult[];
  columns: number;
  columnMatches: number;
  dialectMatches: number;
}

/** The fixture files (`*.csv`), by name. */
export async function fixtureFiles(): Promise<string[]> {
  return (await readdir(FIXTURES_DIR)).filter((f) => f.endsWith('.csv')).sort();
}

export async function readTruth(file: string): Promise<Truth> {
  return JSON.parse(await readFile(path.join(FIXTURES_DIR, file.replace(/\.csv$/, '.truth.json')), 'utf8')) as Truth;
}

/** Runs the inference on every fixture (the whole file as the sample) and compares with its truth. */
export async function measureInference(): Promise<Measurement> {
  const files: FixtureResult[] = [];
  for (const file of await fixtureFiles()) {
    const truth = await readTruth(file);
    const inference = inferDataset(await readFile(path.join(FIXTURES_DIR, file)), { name: file.replace(/\.csv$/, ''), complete: true });
    const dialectMismatches = DIALECT_KEYS.filter((k) => inference.dialect[k] !== truth.dialect[k]).map(
      (k) => `${k}: ${JSON.stringify(truth.dialect[k])} → ${JSON.stringify(inference.dialect[k])}`,
    );
    const byName = new Map(inference.columns.map((c) => [c.name, c.type.replace(/\(.*$/, '')]));
    const columnMismatches = Object.entries(truth.columns)
      .filter(([name, type]) => byName.get(name) !== type)
      .map(([name, type]) => `${name}: ${type} → ${byName.get(name) ?? 'missing'}`);
    const columns = Object.keys(truth.columns).length;
    files.push({ file, inference, dialectMismatches, columns, columnMatches: columns - columnMismatches.length, columnMismatches });
  }
  return {
    files,
    columns: files.reduce((n, f) => n + f.columns, 0),
    columnMatches: files.reduce((n, f) => n + f.columnMatches, 0),
    dialectMatches: files.filter((f) => f.dialectMismatches.length === 0).length,
  };
}

/** The measurement as text: one line per file with its mismatches, then the totals. */
export function report(m: Measurement): string {
  const pct = (a: number, b: number) => `${((100 * a) / b).toFixed(1)}%`;
  const lines = m.files.map((f) => {
    const problems = [...f.dialectMismatches, ...f.columnMismatches];
    return `${f.file.padEnd(28)} columns ${String(f.columnMatches).padStart(2)}/${String(f.columns).padEnd(2)} dialect ${f.dialectMismatches.length === 0 ? 'ok ' : 'BAD'}${problems.length ? `  ${problems.join('; ')}` : ''}`;
  });
  lines.push(
    `column types matching the truth: ${m.columnMatches}/${m.columns} (${pct(m.columnMatches, m.columns)}); dialects: ${m.dialectMatches}/${m.files.length} files (${pct(m.dialectMatches, m.files.length)})`,
  );
  return lines.join('\n');
}
