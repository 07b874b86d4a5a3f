// Compressed uploads: a stored object whose first bytes are gzip's magic number (RFC 1952: 1f 8b) is
// decompressed by zlib inside the load's stream pipeline — object read → count stored bytes → gunzip →
// guard → CSV transform — so backpressure holds end to end and nothing is buffered whole. Detection is
// by content, never by name: it works for every way an object can be stored, and a `.csv.gz` that is
// not gzip loads as the CSV it is.
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { createGunzip, type Gunzip } from 'node:zlib';
import { PermanentFailure } from './failures.ts';

/** gzip's ID1 ID2 (RFC 1952 §2.3.1). */
export const GZIP_MAGIC: readonly number[] = [0x1f, 0x8b];

/** How the stored object is encoded: recorded on the upload (`compression`) once its first bytes are read. */
export type Compression = 'gzip' | 'none';

/** GZIP_MAX_RATIO / GZIP_MAX_UNCOMPRESSED_BYTES (src/config.ts). */
export interface DecompressionLimits {
  /** uncompressed bytes per stored byte read so far */
  maxRatio: number;
  /** uncompressed bytes of one upload */
  maxUncompressedBytes: number;
}

/**
 * The ratio is judged only past this many uncompressed bytes: the first few KiB of any file (a header,
 * repeated values) may compress far better than the whole, and nothing below it can exhaust anything.
 */
export const RATIO_GRACE_BYTES = 1 << 20;

/** Whether `head` starts with gzip's magic number. */
export function isGzip(head: Uint8Array): boolean {
  return head.length >= GZIP_MAGIC.length && GZIP_MAGIC.every((byte, i) => head[i] === byte);
}

/**
 * The first `size` bytes of `stream` (fewer if it ends sooner), left unread: the stream yields them
 * again to whoever reads it next. Rejects with the stream's error, or the signal's reason when it aborts.
 */
export async function peekHead(stream: Readable, size: number, signal?: AbortSignal): Promise<Buffer> {
  let wake = () => {};
  const onEvent = () => wake();
  // Listened for from the first read: a stream destroyed inside read() emits 'error' a tick later.
  stream.on('readable', onEvent).on('end', onEvent).on('close', onEvent).on('error', onEvent);
  signal?.addEventListener('abort', onEvent);
  try {
    for (;;) {
      signal?.throwIfAborted();
      if (stream.errored) throw stream.errored;
      // read(n) returns null until n bytes are buffered, unless the stream has ended. Unshifting at
      // once, in the same tick, puts them back before 'end' could be emitted for an emptied buffer.
      const head = stream.read(size) as Buffer | null;
      if (head !== null) {
        stream.unshift(head);
        return head;
      }
      if (stream.readableEnded) return Buffer.alloc(0);
      if (stream.errored) throw stream.errored;
      if (stream.destroyed) throw new Error('the stored object stream closed before its first bytes');
      await new Promise<void>((resolve) => (wake = resolve));
    }
  } finally {
    stream.off('readable', onEvent).off('end', onEvent).off('close', onEvent);
    // An errored stream's 'error' event may still be on its way: leave a listener to take it.
    if (!stream.errored) stream.off('error', onEvent);
    signal?.removeEventListener('abort', onEvent);
  }
}

/** Counts the bytes that pass: the stored (compressed) bytes read, which progress is measured by. */
class ByteMeter extends Transform {
  bytes = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    cb(null, chunk);
  }
}

/**
 * Passes decompressed bytes on while they stay within the limits, judged before each chunk is passed,
 * against the compressed bytes zlib has consumed so far (not those merely handed to it: one 64 KiB read
 * of a bomb holds 64 MiB): a bomb fails within a zlib chunk (16 KiB) of a limit, with `decompression_limit`.
 */
class InflateGuard extends Transform {
  bytes = 0;
  constructor(
    private readonly gunzip: Gunzip,
    private readonly limits: DecompressionLimits,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    const total = this.bytes + chunk.length;
    const { maxRatio, maxUncompressedBytes } = this.limits;
    if (total > maxUncompressedBytes) {
      return cb(limitFailure(`it decompresses to more than ${maxUncompressedBytes} bytes (GZIP_MAX_UNCOMPRESSED_BYTES)`));
    }
    const consumed = this.gunzip.bytesWritten;
    if (total > RATIO_GRACE_BYTES && total > maxRatio * consumed) {
      return cb(limitFailure(`${consumed} compressed bytes expand to more than ${total} (over ${maxRatio}:1, GZIP_MAX_RATIO)`));
    }
    this.bytes = total;
    cb(null, chunk);
  }
}

function limitFailure(detail: string): PermanentFailure {
  return new PermanentFailure('decompression_limit', `the gzip file was refused as a decompression bomb: ${detail}; nothing was loaded`);
}

/** The stages a stored object passes through before the CSV transform, chosen by its first bytes. */
export interface Decoding {
  compression: Compression;
  /** between the object read and the CSV transform (none for a plain file) */
  stages: Transform[];
  /** stored bytes read so far (for a plain file: `csvBytes`, what the CSV transform took in) */
  storedBytes(csvBytes: number): number;
}

/** Chooses the decoding for an object whose first bytes are `head` (see peekHead). */
export function decodingFor(head: Uint8Array, limits: DecompressionLimits): Decoding {
  if (!isGzip(head)) return { compression: 'none', stages: [], storedBytes: (csvBytes) => csvBytes };
  const meter = new ByteMeter();
  // zlib decompresses concatenated gzip members as one stream, as gzip(1) does; it ignores zero
  // padding after the last member, and refuses anything else there (Z_DATA_ERROR) — gzip(1) only warns.
  const gunzip = createGunzip();
  const stages = [meter, gunzip, new InflateGuard(gunzip, limits)];
  return { compression: 'gzip', stages, storedBytes: () => meter.bytes };
}

/** zlib's codes for input that is not a whole gzip stream: corrupt (data, header, CRC or length check) or cut short. */
const CORRUPT_STREAM_CODES = new Set(['Z_DATA_ERROR', 'Z_BUF_ERROR', 'Z_NEED_DICT']);

/** A zlib error that means the file is not valid gzip → PermanentFailure `invalid_gzip`; else null. */
export function asGzipFailure(err: unknown): PermanentFailure | null {
  const e = err as { code?: unknown; message?: unknown } | null;
  if (!e || typeof e.code !== 'string' || !CORRUPT_STREAM_CODES.has(e.code)) return null;
  const why = e.code === 'Z_BUF_ERROR' ? 'it ends before its last member is complete (truncated)' : `it is corrupt (${String(e.message)})`;
  return new PermanentFailure('invalid_gzip', `the file starts like gzip but ${why}; nothing was loaded`);
}
