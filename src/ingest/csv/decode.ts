// A file written in another encoding than UTF-8 (an upload's `encoding`, see input-format.ts) is decoded
// by iconv-lite's streaming decoder into UTF-8 before the CSV transform, so the scanner, the checks and
// the COPY stream stay UTF-8 only; a UTF-8 file passes no stage at all. Byte order marks: a leading BOM is
// dropped (iconv-lite's stripBOM); `utf-16` must start with one (FF FE little-endian, FE FF big-endian),
// which says the byte order; a single-byte file that starts with a UTF-8 or UTF-16 BOM was stated with the
// wrong encoding and fails (`bad_header`, saying which to state). What no encoding can hold becomes U+FFFD (iconv-lite's replacement): bytes
// 81 8D 8F 90 9D of Windows-1252, an unpaired UTF-16 surrogate. Latin-1 maps every byte.
import { Transform, type TransformCallback } from 'node:stream';
import iconv from 'iconv-lite';
import type { Encoding } from './input-format.ts';
import { CsvFileError } from './types.ts';

/** iconv-lite's streaming decoder (its DecoderStream: write a chunk, get the text it completes). */
type Decoder = ReturnType<typeof iconv.getDecoder>;

/** Decodes `encoding` into UTF-8 Buffers; `bytesIn` counts the encoded bytes taken (progress is by them). */
export class TextDecodeStream extends Transform {
  bytesIn = 0;
  private readonly decoder: Decoder;
  /** The first bytes, held until the byte order mark (or its absence) is known; null once it is. */
  private head: Buffer | null = Buffer.alloc(0);
  /** A high surrogate that ended the last chunk's text: its pair comes with the next (UTF-8 needs both). */
  private pending = '';

  constructor(readonly encoding: Exclude<Encoding, 'utf-8'>) {
    super();
    this.decoder = iconv.getDecoder(encoding, { stripBOM: true });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytesIn += chunk.length;
    if (this.head !== null) {
      const head = Buffer.concat([this.head, chunk]);
      if (head.length < 3) {
        this.head = head;
        return cb();
      }
      this.head = null;
      const wrong = this.bomProblem(head);
      if (wrong) return cb(wrong);
      chunk = head;
    }
    cb(null, this.utf8(this.decoder.write(chunk), false));
  }

  override _flush(cb: TransformCallback): void {
    if (this.head !== null) {
      // A file of fewer than 3 bytes (none: an empty file, which the CSV transform names).
      const head = this.head;
      this.head = null;
      if (head.length > 0) {
        const wrong = this.bomProblem(head);
        if (wrong) return cb(wrong);
        const text = this.utf8(this.decoder.write(head), false);
        if (text) this.push(text);
      }
    }
    cb(null, this.utf8(this.decoder.end() ?? '', true));
  }

  /** What the first bytes say against the stated encoding, or null. */
  private bomProblem(head: Buffer): CsvFileError | null {
    const utf16 = (head[0] === 0xff && head[1] === 0xfe) || (head[0] === 0xfe && head[1] === 0xff);
    if (this.encoding === 'utf-16') return utf16 ? null : missingBom();
    const utf8 = head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf;
    if (!utf8 && !utf16) return null;
    const actual = utf8 ? 'utf-8' : 'utf-16';
    return new CsvFileError('bad_header', `the file starts with a ${actual.toUpperCase()} byte order mark, but encoding ${this.encoding} was stated: upload it with encoding ${actual}; no row was loaded`);
  }

  /** `text` (after what was pending) as UTF-8, keeping back a final high surrogate unless `last`. */
  private utf8(text: string, last: boolean): Buffer | undefined {
    let all = this.pending + text;
    this.pending = '';
    const tail = all.charCodeAt(all.length - 1);
    if (!last && tail >= 0xd800 && tail <= 0xdbff) {
      this.pending = all.slice(-1);
      all = all.slice(0, -1);
    }
    return all.length > 0 ? Buffer.from(all, 'utf8') : undefined;
  }
}

function missingBom(): CsvFileError {
  return new CsvFileError('missing_bom', 'encoding utf-16 needs a byte order mark (FF FE or FE FF) at the start of the file, and this file has none; no row was loaded');
}

/** The decoding stage for `encoding`, or null for UTF-8 (read as it is). */
export function decoderFor(encoding: Encoding): TextDecodeStream | null {
  return encoding === 'utf-8' ? null : new TextDecodeStream(encoding);
}
