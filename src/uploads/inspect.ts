// A pass-through Transform that hashes and counts the bytes of an upload on their way to storage and
// refuses content that is plainly not CSV text before any of it is stored. gzip passes: the worker
// decompresses it while loading (src/ingest/decompress.ts), whatever the file is named.
import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { AppError } from '../errors.ts';
import { isGzip } from '../ingest/decompress.ts';

/** How much of a file is judged by sniffNonCsv before any of it is accepted. */
export const SNIFF_BYTES = 1024;

const BINARY_SIGNATURES: readonly (readonly number[])[] = [
  [0x89, 0x50, 0x4e, 0x47], // PNG
  [0xff, 0xd8, 0xff], // JPEG
  [0x47, 0x49, 0x46, 0x38], // GIF
  [0x25, 0x50, 0x44, 0x46], // PDF
  [0x50, 0x4b, 0x03, 0x04], // ZIP / XLSX
  [0xd0, 0xcf, 0x11, 0xe0], // legacy Office (XLS)
];

/** Why the first bytes of a file are not CSV text (or gzip, which may hold CSV), or null if they may be. */
export function sniffNonCsv(head: Buffer): string | null {
  // Compressed bytes are binary (NULs included); what they hold is judged as it is decompressed.
  if (isGzip(head)) return null;
  // UTF-16 text starts with its byte order mark and is half NULs when mostly ASCII: it is judged as it is
  // decoded (an upload stating encoding=utf-16), or fails its header as UTF-8 text would.
  if (head.length >= 2 && ((head[0] === 0xff && head[1] === 0xfe) || (head[0] === 0xfe && head[1] === 0xff))) return null;
  for (const sig of BINARY_SIGNATURES) {
    if (head.length >= sig.length && sig.every((byte, i) => head[i] === byte)) {
      return 'file looks like a binary format, not CSV text';
    }
  }
  if (head.includes(0)) return 'file contains NUL bytes in its first KiB; CSV must be text';
  return null;
}

export class InspectStream extends Transform {
  bytes = 0;
  private readonly hash = createHash('sha256');
  private head: Buffer[] | null = [];
  private headBytes = 0;

  /** `isTruncated` is asked at the end: a source cut at a size limit must fail, not be stored short. */
  constructor(private readonly isTruncated: () => boolean = () => false) {
    super();
  }

  private digest: string | null = null;

  /** Hex SHA-256 of everything that passed; read it once the stream has finished. */
  get sha256(): string {
    return (this.digest ??= this.hash.digest('hex'));
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    this.hash.update(chunk);
    if (this.head === null) return cb(null, chunk);
    // Hold back output until the first KiB has been judged, so nothing non-CSV reaches storage.
    this.head.push(chunk);
    this.headBytes += chunk.length;
    if (this.headBytes < SNIFF_BYTES) return cb();
    this.releaseHead(cb);
  }

  override _flush(cb: TransformCallback): void {
    if (this.isTruncated()) return cb(new AppError('file_too_large'));
    if (this.head !== null) return this.releaseHead(cb);
    cb();
  }

  private releaseHead(cb: TransformCallback): void {
    const buffered = Buffer.concat(this.head ?? []);
    this.head = null;
    const problem = sniffNonCsv(buffered.subarray(0, SNIFF_BYTES));
    if (problem) return cb(new AppError('unsupported_media_type', problem));
    cb(null, buffered);
  }
}
