// Decompression in the load pipeline (src/ingest/decompress.ts), without I/O: detection by magic bytes,
// peeking without consuming, zlib's gunzip against gzip(1) itself, corrupt and truncated streams, the
// bomb guard, and the loader's line accounting on what comes out.
import { spawnSync } from 'node:child_process';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { asGzipFailure, decodingFor, isGzip, peekHead, RATIO_GRACE_BYTES, type DecompressionLimits } from '../../src/ingest/decompress.ts';
import { createCopyTransform } from '../../src/ingest/csv/index.ts';
import { webhookEvents } from '../../src/ingest/datasets/index.ts';
import { PermanentFailure } from '../../src/ingest/failures.ts';
import { sniffNonCsv } from '../../src/uploads/inspect.ts';
import { generateCsv } from '../helpers/generate.ts';

const LIMITS: DecompressionLimits = { maxRatio: 200, maxUncompressedBytes: 1 << 30 };

/** `data` as a stream of `size`-byte chunks. */
function chunked(data: Buffer, size: number): Readable {
  const parts: Buffer[] = [];
  for (let i = 0; i < data.length; i += size) parts.push(data.subarray(i, i + size));
  return Readable.from(parts, { objectMode: false });
}

/** Runs `data` through peek → the decoding it selects → a collector; the output, or the error it failed with. */
async function decode(data: Buffer, limits = LIMITS, chunkSize = 64 * 1024) {
  const source = chunked(data, chunkSize);
  const decoding = decodingFor(await peekHead(source, 2), limits);
  const out: Buffer[] = [];
  const sink = new Writable({ write: (chunk: Buffer, _enc, cb) => (out.push(chunk), cb()) });
  const error = await pipeline([source, ...decoding.stages, sink]).then(() => null, (err: unknown) => err);
  const bytes = Buffer.concat(out);
  return { decoding, bytes, error, stored: decoding.storedBytes(bytes.length) };
}

/** gzip(1) on this machine, as the reference for what a gzip tool makes of `data`. */
function gzipTool(data: Buffer): { status: number | null; stdout: Buffer } {
  const res = spawnSync('gzip', ['-dc'], { input: data, maxBuffer: 1 << 30 });
  if (res.error) throw res.error;
  return { status: res.status, stdout: res.stdout };
}

describe('detection', () => {
  it('is by the magic bytes 1f 8b, not the name', () => {
    expect(isGzip(gzipSync('a,b\n'))).toBe(true);
    expect(isGzip(Buffer.from([0x1f]))).toBe(false);
    expect(isGzip(Buffer.from('a,b\n'))).toBe(false);
    expect(isGzip(Buffer.from([0x1f, 0x8c]))).toBe(false);
  });

  it('the upload sniff lets gzip through (NUL bytes and all) and still refuses other binaries', () => {
    const gz = gzipSync(generateCsv(100));
    expect(gz.subarray(0, 1024).includes(0)).toBe(true);
    expect(sniffNonCsv(gz.subarray(0, 1024))).toBeNull();
    expect(sniffNonCsv(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a]))).toMatch(/binary/);
    expect(sniffNonCsv(Buffer.from('a,b\n1,\u0000\n'))).toMatch(/NUL/);
  });
});

describe('peekHead', () => {
  it.each([1, 2, 3, 1000])('returns the first bytes and leaves them in the stream (chunks of %i bytes)', async (size) => {
    const data = Buffer.from('event_id,event_type\n1,2\n');
    const stream = chunked(data, size);
    expect(await peekHead(stream, 2)).toEqual(data.subarray(0, 2));
    const rest: Buffer[] = [];
    for await (const chunk of stream) rest.push(chunk as Buffer);
    expect(Buffer.concat(rest)).toEqual(data);
  });

  it('returns what there is of a stream shorter than asked, or nothing of an empty one', async () => {
    const one = chunked(Buffer.from('x'), 1);
    expect(await peekHead(one, 2)).toEqual(Buffer.from('x'));
    expect(Buffer.concat(await one.toArray())).toEqual(Buffer.from('x'));
    const empty = Readable.from([], { objectMode: false });
    expect(await peekHead(empty, 2)).toEqual(Buffer.alloc(0));
  });

  it("rejects with the stream's error, or the signal's reason", async () => {
    const failing = new Readable({ read() { this.destroy(new Error('socket reset')); } });
    await expect(peekHead(failing, 2)).rejects.toThrow('socket reset');
    const stalled = new Readable({ read() {} });
    const abort = new AbortController();
    setTimeout(() => abort.abort(new Error('lease lapsing')), 10);
    await expect(peekHead(stalled, 2, abort.signal)).rejects.toThrow('lease lapsing');
  });
});

describe('decoding', () => {
  const csv = generateCsv(20_000);
  const gz = gzipSync(csv);

  it('passes a plain file through untouched, with no stage added', async () => {
    const r = await decode(csv);
    expect(r.decoding.compression).toBe('none');
    expect(r.decoding.stages).toHaveLength(0);
    expect(r.bytes.equals(csv)).toBe(true);
    expect(r.stored).toBe(csv.length);
  });

  it.each([
    [1, 300],
    [7, 2_000],
    [65_536, 20_000],
  ])('decompresses gzip in the stream (chunks of %i bytes, %i rows); stored bytes = the compressed size', async (size, rows) => {
    const plain = rows === 20_000 ? csv : generateCsv(rows);
    const packed = gzipSync(plain);
    const r = await decode(packed, LIMITS, size);
    expect(r.error).toBeNull();
    expect(r.decoding.compression).toBe('gzip');
    expect(r.bytes.equals(plain)).toBe(true);
    expect(r.stored).toBe(packed.length);
  });

  it('reads concatenated members (multi-member gzip) as gzip(1) does', async () => {
    const [a, b] = [csv.subarray(0, 1_000_000), csv.subarray(1_000_000)];
    const multi = Buffer.concat([gzipSync(a), gzipSync(b, { level: 1 })]);
    const r = await decode(multi);
    expect(r.error).toBeNull();
    expect(r.bytes.equals(csv)).toBe(true);
    const tool = gzipTool(multi);
    expect(tool.status).toBe(0);
    expect(r.bytes.equals(tool.stdout)).toBe(true);
    // Zero padding after the last member (tape blocks): gzip(1) ignores it, and so does zlib.
    const padded = await decode(Buffer.concat([multi, Buffer.alloc(512)]));
    expect(padded.error).toBeNull();
    expect(padded.bytes.equals(csv)).toBe(true);
  });

  it('fails a corrupt stream (a byte flipped mid-way) and a truncated one as invalid_gzip', async () => {
    const flipped = Buffer.from(gz);
    flipped[gz.length >> 1]! ^= 0xff;
    const truncated = gz.subarray(0, gz.length - 1000);
    const trailer = gz.subarray(0, gz.length - 4); // the data whole, its length field cut
    const garbage = Buffer.concat([gz, Buffer.from('not gzip')]); // gzip(1) only warns: we refuse it
    for (const [name, data] of Object.entries({ flipped, truncated, trailer, garbage })) {
      const r = await decode(data);
      const failure = asGzipFailure(r.error);
      expect(failure, name).toBeInstanceOf(PermanentFailure);
      expect(failure!.code, name).toBe('invalid_gzip');
      expect(gzipTool(data).status, `gzip(1) on ${name}`).not.toBe(0);
    }
    expect(asGzipFailure(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }))).toBeNull();
  });

  it('stops a bomb at the ratio limit, having passed on little beyond it', async () => {
    const bomb = gzipSync(Buffer.alloc(256 << 20)); // 256 MiB of zeros → ~256 KiB
    const r = await decode(bomb);
    expect(r.error).toBeInstanceOf(PermanentFailure);
    expect((r.error as PermanentFailure).code).toBe('decompression_limit');
    expect((r.error as PermanentFailure).message).toMatch(/GZIP_MAX_RATIO/);
    // Stopped as soon as the grace was passed (zeros expand ~1000:1, so past the grace the ratio is over at once).
    expect(r.bytes.length).toBeLessThanOrEqual(RATIO_GRACE_BYTES);
    expect(r.bytes.length).toBeGreaterThan(RATIO_GRACE_BYTES - 64 * 1024);
  });

  it('stops at the uncompressed-bytes limit, never passing a byte beyond it', async () => {
    const limit = 300_000;
    const r = await decode(gz, { maxRatio: 100_000, maxUncompressedBytes: limit });
    expect((r.error as PermanentFailure).code).toBe('decompression_limit');
    expect((r.error as PermanentFailure).message).toMatch(/GZIP_MAX_UNCOMPRESSED_BYTES/);
    expect(r.bytes.length).toBeLessThanOrEqual(limit);
    expect(r.bytes.length).toBeGreaterThan(limit - 64 * 1024);
  });

  it('lets a small, very compressible file through: the ratio is judged past the grace only', async () => {
    const small = Buffer.from('event_id,event_type\n' + 'x,y\n'.repeat(100_000)); // ~400 KB at ~400:1
    const r = await decode(gzipSync(small));
    expect(gzipSync(small).length * 200).toBeLessThan(small.length);
    expect(r.error).toBeNull();
    expect(r.bytes.equals(small)).toBe(true);
  });
});

describe('line accounting on decompressed bytes', () => {
  it('the loader books the same lines and rows for a file and its gzip', async () => {
    const csv = generateCsv(5_000, { badRatio: 0.05 });
    const run = async (data: Buffer) => {
      const source = chunked(data, 10_000);
      const decoding = decodingFor(await peekHead(source, 2), LIMITS);
      const transform = createCopyTransform(webhookEvents, { onHeader() {}, onReject() {} });
      await pipeline([source, ...decoding.stages, transform, new Writable({ write: (_c, _e, cb) => cb() })]);
      return { ...transform.stats, stored: decoding.storedBytes(transform.stats.bytesIn) };
    };
    const plain = await run(csv);
    const gz = gzipSync(csv);
    const packed = await run(gz);
    expect(plain.rowsRejected).toBeGreaterThan(0);
    expect({ ...packed, stored: 0 }).toEqual({ ...plain, stored: 0 });
    expect(packed.bytesIn).toBe(csv.length);
    expect(packed.stored).toBe(gz.length);
    expect(packed.lines).toBe(csv.toString().split('\n').length - (csv.at(-1) === 0x0a ? 1 : 0));
  });
});
