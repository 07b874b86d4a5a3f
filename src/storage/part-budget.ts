// Memory for the parts of multipart uploads into storage. Every upload may hold one part (plus the
// chunk that completes it) of its own; parts beyond that — sending several at once, which is what
// makes an upload as fast as the store allows — come out of one budget shared by all the uploads of
// the process. So the memory of N uploads is at most N parts + the budget, however many parts each
// may have in flight: 50 uploads into a slow store cannot hold 50 × parts in flight × part size.
import { Transform, type TransformCallback } from 'node:stream';

/** A count of bytes handed out and given back (one per process, shared by every upload). */
export class PartBudget {
  private free: number;

  /** `bytes`: what all uploads together may hold beyond their first part (0: every upload is serial). */
  constructor(readonly bytes: number) {
    this.free = bytes;
  }

  /** Takes `n` bytes if that many are free; false (and takes nothing) otherwise. */
  tryTake(n: number): boolean {
    if (n > this.free) return false;
    this.free -= n;
    return true;
  }

  give(n: number): void {
    this.free = Math.min(this.bytes, this.free + n);
  }

  /** Bytes not handed out now. */
  get available(): number {
    return this.free;
  }
}

/**
 * A pass-through Transform in front of lib-storage's Upload that holds the stream back while the
 * upload has as many bytes in hand (passed on, not yet reported stored by `stored()`) as its part
 * slots allow: one slot of its own, more taken from `budget` (up to `partsInFlight`) while the store
 * is the slower side, given back as soon as the store catches up. A client slower than the store
 * never takes from the budget. Held back, the stream pauses its source: backpressure, as for a slow
 * store. Call `release()` when the upload ends, however it ends.
 *
 * In hand at any time: at most slots × partSize + one chunk (lib-storage cuts a part only once it has
 * more than partSize bytes, so a chunk is let through whenever the bytes in hand do not exceed the
 * slots; that is also why one slot can never wait on itself).
 */
export class PartGate extends Transform {
  private passed = 0;
  private storedBytes = 0;
  private slots = 1;
  private waiting: { chunk: Buffer; callback: TransformCallback } | null = null;

  constructor(
    private readonly budget: PartBudget,
    private readonly partSize: number,
    private readonly partsInFlight: number,
  ) {
    // No readable buffer beyond the chunk just let through: bytes counted as in hand are lib-storage's.
    super({ readableHighWaterMark: 0 });
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.waiting = { chunk, callback };
    this.admit();
  }

  /** lib-storage's count of bytes stored so far (its `httpUploadProgress` event's `loaded`). */
  stored(bytes: number): void {
    this.storedBytes = Math.max(this.storedBytes, bytes);
    // Slots the bytes in hand no longer need go back at once, for other uploads to use.
    while (this.slots > 1 && this.inHand() <= (this.slots - 1) * this.partSize) {
      this.slots--;
      this.budget.give(this.partSize);
    }
    this.admit();
  }

  /** Gives back every slot taken from the budget (idempotent). */
  release(): void {
    this.budget.give((this.slots - 1) * this.partSize);
    this.slots = 1;
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.waiting = null;
    this.release();
    callback(err);
  }

  private inHand(): number {
    return this.passed - this.storedBytes;
  }

  private admit(): void {
    const next = this.waiting;
    if (!next) return;
    while (this.inHand() > this.slots * this.partSize) {
      if (this.slots >= this.partsInFlight || !this.budget.tryTake(this.partSize)) return; // until stored() says more
      this.slots++;
    }
    this.waiting = null;
    this.passed += next.chunk.length;
    next.callback(null, next.chunk);
  }
}
