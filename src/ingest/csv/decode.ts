// A file written in another encoding than UTF-8 (an upload's `encoding`, see input-format.ts) is decoded
// by iconv-lite's streaming decoder into UTF-8 before the CSV transform, so the scanner, the checks and
// the COPY stream stay UTF-8 only; a UTF-8 file passes no stage at all. Byte order marks: a leading BOM is
// dropped (iconv-lite's stripBOM); `utf-16` must start with one (FF FE little-endian, FE FF big-endian),
// which says the byte order. What no encoding can hold becomes U+FFFD (iconv-lite's replacement): bytes
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
  /** utf-16 only: the first bytes, held until the BOM is seen; null once it was. */
  private head: Buffer | null;
  /** A high surrogate that ended the last chunk's text: its pair comes with the next (UTF-8 needs both). */
  private pending = '';

  constructor(readonly encoding: Exclude<Encoding, 'utf-8'>) {
    super();
    this.decoder = iconv.getDecoder(encoding, { stripBOM: true });
    this.head = encoding === 'utf-16' ? Buffer.alloc(0) : null;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytesIn += chunk.length;
    if (this.head !== null) {
      const head = Buffer.concat([this.head, chunk]);
      if (head.length < 2) {
        this.head = head;
        return cb();
      }
      this.head = null;
      if (!hasUtf16Bom(head)) return cb(missingBom());
      chunk = head;
    }
    cb(null, this.utf8(this.decoder.write(chunk), false));
  }

  override _flush(cb: TransformCallback): void {
    // One byte in all: not a BOM. None: an empty file, which the CSV transform names.
    if (this.head !== null && this.head.length > 0) return cb(missingBom());
    cb(null, this.utf8(this.decoder.end() ?? '', true));
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

function hasUtf16Bom(head: Buffer): boolean {
  return (head[0] === 0xff && head[1] === 0xfe) || (head[0] === 0xfe && head[1] === 0xff);
}

function missingBom(): CsvFileError {
  return new CsvFileError('missing_bom', 'encoding utf-16 needs a byte order mark (FF FE or FE FF) at the start of the file, and this file has none; no row was loaded');
}

/** The decoding stage for `encoding`, or null for UTF-8 (read as it is). */
export function decoderFor(encoding: Encoding): TextDecodeStream | null {
  return encoding === 'utf-8' ? null : new TextDecodeStream(encoding);
}
