// The product's data generator: deterministic, the header the loader expects, broken rows exactly where
// it says and each rejected with the code it names; and the `stream-api generate` command around it.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { parse } from 'csv-parse/sync';
import { describe, expect, it } from 'vitest';
import { BAD_ROW_KINDS, WEBHOOK_EVENTS_HEADER, webhookEventsChunks, type BadRowKind } from '../../src/datagen/webhook-events.ts';
import { createCopyTransform, type Reject } from '../../src/ingest/csv/index.ts';
import { webhookEvents } from '../../src/ingest/datasets/index.ts';
import { generateCsv } from '../helpers/generate.ts';

const BIN = fileURLToPath(new URL('../../bin/stream-api.mjs', import.meta.url));
const run = promisify(execFile);

async function load(csv: Buffer): Promise<{ accepted: number; rejects: Reject[] }> {
  const rejects: Reject[] = [];
  const t = createCopyTransform(webhookEvents, { onHeader: () => {}, onReject: (r) => rejects.push(r) });
  await pipeline(Readable.from([csv]), t, new Writable({ write: (_c, _e, cb) => cb() }));
  return { accepted: t.stats.rowsAccepted, rejects };
}

describe('webhook_events generator', () => {
  it('is deterministic per seed, and the seed matters', () => {
    expect(generateCsv(2000).equals(generateCsv(2000))).toBe(true);
    expect(generateCsv(2000, { seed: 7 }).equals(generateCsv(2000, { seed: 7 }))).toBe(true);
    expect(generateCsv(2000, { seed: 7 }).equals(generateCsv(2000))).toBe(false);
    // chunking does not change the bytes
    expect(Buffer.concat([...webhookEventsChunks({ rows: 3000, chunkBytes: 1000 })]).equals(generateCsv(3000))).toBe(true);
  });

  it('writes the header and N valid RFC 4180 rows the loader accepts in full', async () => {
    const csv = generateCsv(5000);
    const records = parse(csv) as string[][];
    expect(records[0]!.join(',')).toBe(WEBHOOK_EVENTS_HEADER);
    expect(records).toHaveLength(5001);
    expect(new Set(records.slice(1).map((r) => r[0])).size).toBe(5000);
    expect(await load(csv)).toEqual({ accepted: 5000, rejects: [] });
    expect(generateCsv(0).toString()).toBe(WEBHOOK_EVENTS_HEADER + '\n');
  });

  it('breaks about badRatio of the rows, each rejected on the line and with the code it reports', async () => {
    const bad = new Map<number, BadRowKind>();
    const rows = 20_000;
    const csv = generateCsv(rows, { badRatio: 0.05, onBadRow: (line, kind) => bad.set(line, kind) });
    expect(bad.size).toBeGreaterThan(rows * 0.04);
    expect(bad.size).toBeLessThan(rows * 0.06);
    expect(new Set(bad.values())).toEqual(new Set(BAD_ROW_KINDS));
    const { accepted, rejects } = await load(csv);
    expect(accepted).toBe(rows - bad.size);
    expect(new Map(rejects.map((r) => [r.line, r.code]))).toEqual(bad);
    // the rows left intact are those of the clean file
    const clean = generateCsv(rows).toString().split('\n');
    const dirty = csv.toString('latin1').split('\n');
    for (let line = 2; line <= rows + 1; line++) {
      if (!bad.has(line)) expect(dirty[line - 1]).toBe(clean[line - 1]);
    }
  });

  it('refuses invalid options', () => {
    expect(() => generateCsv(-1)).toThrow(RangeError);
    expect(() => generateCsv(1, { badRatio: 1.5 })).toThrow(RangeError);
    expect(() => generateCsv(1, { seed: 1.5 })).toThrow(RangeError);
  });
});

describe('stream-api generate', () => {
  it('writes the same bytes to stdout, to --out, and gzipped', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'stream-api-gen-'));
    try {
      const expected = generateCsv(1500, { seed: 9, badRatio: 0.1 });
      const stdout = await run(process.execPath, [BIN, 'generate', '--rows', '1500', '--seed', '9', '--bad-ratio', '0.1'], {
        encoding: 'buffer',
        maxBuffer: 1 << 26,
      });
      expect(stdout.stdout.equals(expected)).toBe(true);

      const out = path.join(dir, 'x.csv');
      const file = await run(process.execPath, [BIN, 'generate', '--rows', '1500', '--seed', '9', '--bad-ratio', '0.1', '--out', out]);
      expect(file.stdout).toBe('');
      expect(file.stderr).toMatch(/wrote 1500 rows \(\d+ broken\)/);
      expect((await readFile(out)).equals(expected)).toBe(true);

      const gz = path.join(dir, 'x.csv.gz');
      await run(process.execPath, [BIN, 'generate', '--rows', '1500', '--seed', '9', '--bad-ratio', '0.1', '--gzip', '--out', gz]);
      expect(gunzipSync(await readFile(gz)).equals(expected)).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it.each([[[]], [['--rows', 'x']], [['--rows', '5', '--bad-ratio', '2']], [['--rows', '5', '--nope']]])(
    'exits 2 with the usage on bad flags: %j',
    async (args) => {
      const err = await run(process.execPath, [BIN, 'generate', ...args]).then(
        () => null,
        (e: { code: number; stderr: string; stdout: string }) => e,
      );
      expect(err?.code).toBe(2);
      expect(err?.stdout).toBe('');
      expect(err?.stderr).toMatch(/usage:\n\s+generate --rows N/);
    },
  );
});
