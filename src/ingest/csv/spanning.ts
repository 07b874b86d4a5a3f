// A record that spans input chunks. Its pieces are kept (they are slices of the input chunks,
// no copy) until its end is found; past maxRecordBytes only its first RAW_CAP bytes are kept
// and the rest is scanned for the end and dropped, so a quote that is never closed cannot
// make memory grow with the file (it is still scanned to the end: an unterminated quote fails it).

import { COMMA, endsInsideQuotes, findRecordEnd, newFinderState, resetFinderState } from './scan.ts';

export const RAW_CAP = 8192;

export type TakenRecord =
  | { kind: 'record'; record: Buffer }
  | {
      kind: 'too_large';
      prefix: Buffer;
      /** LFs inside the record */
      newlines: number;
      /** at the end of the data only: it ended inside a quoted field opened after `openQuoteNewlines` LFs */
      unterminated: boolean;
      openQuoteNewlines: number;
    };

export class SpanningRecord {
  private pieces: Buffer[] = [];
  private bytes = 0;
  private prefix: Buffer | null = null; // set once the record is known too large
  private readonly finder: ReturnType<typeof newFinderState>;

  /** `delimiter` and `relaxed`: the file's, as the RecordScanner reading it has them. */
  constructor(
    private readonly maxBytes: number,
    delimiter = COMMA,
    relaxed = false,
  ) {
    this.finder = newFinderState(delimiter, relaxed);
  }

  get active(): boolean {
    return this.bytes > 0;
  }

  /** Starts with the unfinished tail of a chunk (the scanner found no end in it). */
  start(tail: Buffer): void {
    resetFinderState(this.finder);
    if (findRecordEnd(tail, 0, this.finder) >= 0) throw new Error('csv scanner and record finder disagree');
    this.add(tail);
  }

  /** Looks for the record's end in the next chunk: the index of its LF, or -1 (chunk held). */
  continueWith(chunk: Buffer): number {
    const end = findRecordEnd(chunk, 0, this.finder);
    if (end < 0) this.add(chunk);
    return end;
  }

  /** Hands over the record completed by `last` (its head up to the LF; null at end of input). */
  take(last: Buffer | null): TakenRecord {
    const pieces = last ? [...this.pieces, last] : this.pieces;
    const total = this.bytes + (last?.length ?? 0);
    const prefix = this.prefix ?? (total > this.maxBytes ? prefixOf(pieces, RAW_CAP) : null);
    const { newlines, openQuoteNewlines } = this.finder;
    const unterminated = last === null && endsInsideQuotes(this.finder);
    this.pieces = [];
    this.bytes = 0;
    this.prefix = null;
    if (prefix !== null) return { kind: 'too_large', prefix, newlines, unterminated, openQuoteNewlines };
    return { kind: 'record', record: Buffer.concat(pieces, total) };
  }

  private add(piece: Buffer): void {
    this.bytes += piece.length;
    if (this.prefix !== null) return;
    this.pieces.push(piece);
    if (this.bytes > this.maxBytes) {
      this.prefix = prefixOf(this.pieces, RAW_CAP);
      this.pieces = [];
    }
  }
}

/** A copy of the first n bytes of the pieces (a copy, so the input chunks can be freed). */
function prefixOf(pieces: Buffer[], n: number): Buffer {
  const out: Buffer[] = [];
  let have = 0;
  for (const p of pieces) {
    if (have >= n) break;
    out.push(p.subarray(0, n - have));
    have += Math.min(p.length, n - have);
  }
  return Buffer.concat(out, have);
}
