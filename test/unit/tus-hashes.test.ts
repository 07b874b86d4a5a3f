// RunningHashes: a tus upload's SHA-256 carried from write to write in one process, and dropped whenever
// the bytes that passed are not exactly the ones the store kept.
import { createHash } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { RunningHashes } from '../../src/uploads/tus/hashes.ts';

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const file = Buffer.from(Array.from({ length: 5000 }, (_, i) => `row ${i}\n`).join(''));

/** One write of file[from, to) through `hashes`; the store "keeps" `kept` bytes of it (all by default). */
async function write(hashes: RunningHashes, from: number, to: number, kept = to - from, id = 'u'): Promise<void> {
  const w = hashes.write(id, from);
  await pipeline(Readable.from([file.subarray(from, to)]), w.stream, new Writable({ write: (_c, _e, cb) => cb() }));
  w.settle(from + kept);
}

describe('RunningHashes', () => {
  it('carries the hash over consecutive writes: the digest of the whole file', async () => {
    const hashes = new RunningHashes();
    await write(hashes, 0, 1000);
    await write(hashes, 1000, 30_000);
    await write(hashes, 30_000, file.length);
    expect(hashes.take('u', file.length)).toEqual({ sha256: sha256(file), bytes: file.length });
    expect(hashes.take('u', file.length)).toBeNull(); // taken once
  });

  it('has no digest when a write does not continue where the hash ends (bytes written elsewhere)', async () => {
    const hashes = new RunningHashes();
    await write(hashes, 0, 1000);
    await write(hashes, 2000, file.length); // [1000, 2000) went through another process
    expect(hashes.take('u', file.length)).toBeNull();
  });

  it('drops the hash when the store kept fewer bytes than passed (a cut), and starts again at offset 0', async () => {
    const hashes = new RunningHashes();
    await write(hashes, 0, 20_000, 15_000);
    await write(hashes, 15_000, file.length);
    expect(hashes.take('u', file.length)).toBeNull();
    await write(hashes, 0, file.length);
    expect(hashes.take('u', file.length)?.sha256).toBe(sha256(file));
  });

  it('has no digest before the last byte, and keeps at most maxUploads uploads (the oldest goes)', async () => {
    const hashes = new RunningHashes(1);
    await write(hashes, 0, 1000);
    expect(hashes.take('u', file.length)).toBeNull();
    await write(hashes, 0, file.length, file.length, 'a');
    await write(hashes, 0, file.length, file.length, 'b');
    expect(hashes.take('a', file.length)).toBeNull();
    expect(hashes.take('b', file.length)?.sha256).toBe(sha256(file));
  });
});
