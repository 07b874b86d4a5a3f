// Fills fixed-size Buffers with COPY lines and hands each one over when full, so PostgreSQL
// gets ~chunkBytes writes and at most one partially filled Buffer is held here.

const ZERO = 0x30;

export class ChunkWriter {
  private buf: Buffer;
  pos = 0;
  bytesOut = 0;

  constructor(
    private readonly chunkBytes: number,
    private readonly emit: (chunk: Buffer) => void,
  ) {
    this.buf = Buffer.allocUnsafe(chunkBytes);
  }

  /** The Buffer being filled: a caller that reserved room may write into it at `pos`, then advance `pos`. */
  get buffer(): Buffer {
    return this.buf;
  }

  /** Makes room for n more bytes; returns the Buffer to write into at `pos`. */
  reserve(n: number): Buffer {
    if (this.pos + n > this.buf.length) {
      this.flush();
      if (n > this.buf.length) this.buf = Buffer.allocUnsafe(n); // one oversized record
    }
    return this.buf;
  }

  /** Hands over what has been written (if anything); unless `final`, starts a fresh Buffer. */
  flush(final = false): void {
    if (this.pos === 0) return;
    const full = this.buf.subarray(0, this.pos);
    this.bytesOut += this.pos;
    // A new Buffer, never a reused one: the consumer may still hold the previous one.
    this.buf = final ? Buffer.alloc(0) : Buffer.allocUnsafe(this.chunkBytes);
    this.pos = 0;
    this.emit(full);
  }

  /** Writes n (a non-negative safe integer) in decimal at pos. The caller reserved ≥ 16 bytes. */
  writeInt(n: number): void {
    const b = this.buf;
    if (n >= 2147483648) {
      this.pos += b.write(String(n), this.pos, 'latin1');
      return;
    }
    let digits = 1;
    for (let t = n; t >= 10; t = (t / 10) | 0) digits++;
    let p = this.pos + digits;
    this.pos = p;
    do {
      const q = (n / 10) | 0;
      b[--p] = ZERO + n - q * 10;
      n = q;
    } while (n > 0);
  }

  byte(c: number): void {
    this.buf[this.pos++] = c;
  }

  copy(src: Buffer, s: number, e: number): void {
    this.pos += src.copy(this.buf, this.pos, s, e);
  }
}
