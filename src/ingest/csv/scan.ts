// Hand-written RFC 4180 byte scanner — the hot path of CSV ingestion.
// The delimiter is one byte of `,` `;` TAB `|` (RFC 4180's comma by default); blanks are spaces and tabs,
// or spaces only when the delimiter is TAB.
//
// csv-parse builds a JS string per field; here one pass over the bytes records only offsets,
// so a valid record can later be copied to the COPY stream as its original bytes.
//
// Two functions implement the SAME automaton and must agree on where a record ends:
//  - RecordScanner.parse: full parse of one record starting at a record boundary (field
//    offsets, trimming, malformed-ness); gives up (-1) when the record is not complete.
//  - findRecordEnd: resumable, offsets-free; used only for a record that spans input chunks.
//
// Quote rules — those of csv-parse (strict, no relax_quotes) and Papa Parse, so a file means the same
// here as in the reference libraries (the property tests in test/unit/ingest-csv-accounting.test.ts and
// ingest-csv-formats.test.ts check it against csv-parse, with the same delimiter and relax_quotes):
//  - a quote opens a quoted field only at field start (leading spaces/tabs allowed);
//  - inside a quoted field, `""` is a literal quote, and a quote closes the field only when what
//    follows it (after optional spaces/tabs) is a comma, CRLF, LF or the end of the data; any other
//    quote is a literal that makes the record malformed, and the field goes on;
//  - inside an unquoted field a quote is a literal that makes the record malformed;
//  - a record ends at LF or CRLF outside quotes; a CR not followed by LF outside quotes is
//    malformed (PostgreSQL's COPY refuses it as well);
//  - the data ending inside a quoted field is an unterminated quote: the file cannot be read.
// In `relaxed` mode (csv-parse's relax_quotes) a quote inside an unquoted field is a literal character,
// and a quote inside a quoted field that neither is doubled nor closes it turns the field into a literal
// one: its value is its bytes as written from the opening quote (csv-parse would unescape a `""` before
// that quote; the property test keeps to fields without one) up to the next delimiter or line end.
// Such fields are flagged F_LITERAL: the COPY output must quote them and double their quotes.

export const QUOTE = 0x22;
export const COMMA = 0x2c;
export const LF = 0x0a;
export const CR = 0x0d;
const SP = 0x20;
const TAB = 0x09;

/** Per-field flags (RecordScanner.fields[3 * i + 2]). */
export const F_QUOTED = 1;
/** The quoted content holds doubled quotes (`""`) that must be unescaped when decoded. */
export const F_ESCAPED = 2;
/** The original bytes are not the canonical output: trimmed, spaces around quotes, or blank. */
export const F_REBUILD = 4;
/** relaxed quotes: an unquoted value holding literal quotes (always with F_REBUILD). */
export const F_LITERAL = 8;

export const MALFORMED_NONE = 0;
export const MALFORMED_QUOTE_IN_FIELD = 1;
/** A quote inside a quoted field that is neither doubled nor followed by a delimiter or line end. */
export const MALFORMED_INVALID_CLOSING_QUOTE = 2;
export const MALFORMED_BARE_CR = 3;

/** 1 for the bytes that end a run of unquoted field content, for `delimiter`. */
function unquotedStops(delimiter: number): Uint8Array {
  const stop = new Uint8Array(256);
  stop[delimiter] = stop[LF] = stop[CR] = stop[QUOTE] = 1;
  return stop;
}

/** The second blank byte beside SP: TAB, or SP again when TAB is the delimiter. */
const blankFor = (delimiter: number): number => (delimiter === TAB ? SP : TAB);

/** Closes: the bytes after a quote at `q` inside a quoted field close it. */
const CLOSES = 1;
/** Literal: they do not (the quote is an invalid closing quote). */
const LITERAL = 0;
/** Unknown until more data arrives. */
const NEED_MORE = -1;

/**
 * Whether the quote at buf[q] (inside a quoted field, not doubled) closes the field: what follows it,
 * after optional blanks (SP and `blank`), is the delimiter, LF, CRLF or the end of the data (`eof`).
 */
function closingQuote(buf: Uint8Array, q: number, limit: number, eof: boolean, delimiter: number, blank: number): number {
  let k = q + 1;
  let c = 0;
  while (k < limit && ((c = buf[k]!) === SP || c === blank)) k++;
  if (k >= limit) return eof ? CLOSES : NEED_MORE;
  if (c === delimiter || c === LF) return CLOSES;
  if (c !== CR) return LITERAL;
  if (k + 1 >= limit) return eof ? LITERAL : NEED_MORE;
  return buf[k + 1] === LF ? CLOSES : LITERAL;
}

export class RecordScanner {
  readonly delimiter: number;
  readonly relaxed: boolean;
  private readonly blank: number;
  private readonly stop: Uint8Array;
  /** Stride 3 per field: value start, value end (trimmed; for quoted fields the content inside
   * the quotes, doubled quotes still escaped), flags. */
  fields = new Int32Array(3 * 64);
  fieldCount = 0;
  /** Offset where the record's content ends (its CR LF / LF terminator excluded). */
  contentEnd = 0;
  /** LFs inside quoted fields, for physical line numbering. */
  newlines = 0;
  malformed = MALFORMED_NONE;
  malformedField = -1;
  /** The data ended inside a quoted field (only with `eof`): the file cannot be read. */
  unterminated = false;
  /** With `unterminated`: LFs of the record before the quote that opened that field. */
  openQuoteNewlines = 0;
  /** Some field has F_REBUILD. */
  rebuild = false;
  /** Some field has F_LITERAL (relaxed quotes only). */
  literal = false;

  /** `delimiter`: the byte between fields (default comma); `relaxed`: relaxed quote rules (see above). */
  constructor(delimiter = COMMA, relaxed = false) {
    this.delimiter = delimiter;
    this.relaxed = relaxed;
    this.blank = blankFor(delimiter);
    this.stop = unquotedStops(delimiter);
  }

  /**
   * Parses the record starting at `start`. Returns the offset just after its terminator, or
   * -1 if `buf[start, limit)` does not hold the whole record. With `eof`, the end of the data
   * terminates the record (an open quote then sets `unterminated`).
   */
  parse(buf: Uint8Array, start: number, limit: number, eof: boolean): number {
    let i = start;
    let nf = 0;
    let c = 0;
    const D = this.delimiter;
    const B = this.blank;
    const stop = this.stop;
    this.newlines = 0;
    this.malformed = MALFORMED_NONE;
    this.malformedField = -1;
    this.unterminated = false;
    this.rebuild = false;
    this.literal = false;
    for (;;) {
      if (3 * nf + 3 > this.fields.length) this.grow();
      let flags = 0;
      const fs = i;
      // Leading blanks: part of a blank/unquoted value, or allowed before an opening quote.
      while (i < limit && ((c = buf[i]!) === SP || c === B)) i++;
      if (i >= limit) {
        if (!eof) return -1;
        return this.endAt(nf, i, i, i > fs ? F_REBUILD : 0, limit, limit);
      }
      const vs = i;
      // relaxed: the field turned literal at a quote that does not close it
      let literal = false;
      if (c === QUOTE) {
        if (i > fs) flags = F_REBUILD;
        flags |= F_QUOTED;
        const openNewlines = this.newlines;
        const cs = ++i;
        let newlines = 0;
        for (;;) {
          while (i < limit && (c = buf[i]!) !== QUOTE) {
            if (c === LF) newlines++;
            i++;
          }
          if (i >= limit) {
            if (!eof) return -1;
            this.newlines += newlines;
            this.unterminated = true;
            this.openQuoteNewlines = openNewlines;
            return this.endAt(nf, cs, limit, flags, limit, limit);
          }
          if (i + 1 < limit && buf[i + 1] === QUOTE) {
            flags |= F_ESCAPED;
            i += 2;
            continue;
          }
          const verdict = closingQuote(buf, i, limit, eof, D, B);
          if (verdict === CLOSES) break;
          if (verdict === NEED_MORE) return -1;
          if (this.relaxed) {
            literal = true;
            break;
          }
          this.markMalformed(MALFORMED_INVALID_CLOSING_QUOTE, nf);
          i++;
        }
        this.newlines += newlines;
        if (literal) {
          // The value runs on, unquoted, from the opening quote.
          i++;
          flags = 0;
        } else {
          let ts = cs;
          let te = i++;
          while (ts < te && ((c = buf[ts]!) === SP || c === B)) ts++;
          while (te > ts && ((c = buf[te - 1]!) === SP || c === B)) te--;
          if (ts !== cs || te !== i - 1 || ts === te) flags |= F_REBUILD;
          while (i < limit && ((c = buf[i]!) === SP || c === B)) {
            flags |= F_REBUILD;
            i++;
          }
          // closingQuote() saw what follows: the end of the data, the delimiter, LF or CRLF.
          if (i >= limit) return this.endAt(nf, ts, te, flags, limit, limit);
          if (c === D) {
            this.setField(nf++, ts, te, flags);
            i++;
            continue;
          }
          if (c === LF) return this.endAt(nf, ts, te, flags, i, i + 1);
          return this.endAt(nf, ts, te, flags, i, i + 2);
        }
      }
      // Unquoted field (or, relaxed, a literal one running on from its opening quote).
      for (;;) {
        while (i < limit && stop[(c = buf[i]!)] === 0) i++;
        if (i >= limit) {
          if (!eof) return -1;
          return this.endUnquoted(nf, fs, vs, limit, limit, limit, buf, literal);
        }
        if (c === QUOTE) {
          if (this.relaxed) literal = true;
          else this.markMalformed(MALFORMED_QUOTE_IN_FIELD, nf);
          i++;
          continue;
        }
        if (c === CR) {
          if (i + 1 >= limit && !eof) return -1;
          if (i + 1 < limit && buf[i + 1] === LF) return this.endUnquoted(nf, fs, vs, i, i, i + 2, buf, literal);
          this.markMalformed(MALFORMED_BARE_CR, nf);
          i++;
          continue;
        }
        break;
      }
      if (c === LF) return this.endUnquoted(nf, fs, vs, i, i, i + 1, buf, literal);
      // the delimiter
      let te = i;
      while (te > vs && ((c = buf[te - 1]!) === SP || c === B)) te--;
      this.setField(nf++, vs, te, literal ? this.literalField() : te !== i || vs !== fs ? F_REBUILD : 0);
      i++;
    }
  }

  /** True if the parsed record is a blank line (nothing but spaces/tabs). */
  isBlank(): boolean {
    return this.fieldCount === 1 && (this.fields[2]! & F_QUOTED) === 0 && this.fields[0] === this.fields[1];
  }

  private grow(): void {
    const bigger = new Int32Array(this.fields.length * 2);
    bigger.set(this.fields);
    this.fields = bigger;
  }

  // fs: where the field's bytes start; vs: after its leading blanks; fe: where it ends.
  private endUnquoted(nf: number, fs: number, vs: number, fe: number, contentEnd: number, next: number, buf: Uint8Array, literal: boolean): number {
    let te = fe;
    let c = 0;
    const B = this.blank;
    while (te > vs && ((c = buf[te - 1]!) === SP || c === B)) te--;
    const flags = literal ? this.literalField() : te !== fe || vs !== fs ? F_REBUILD : 0;
    return this.endAt(nf, vs, te, flags, contentEnd, next);
  }

  /** The flags of a literal field (relaxed quotes), noted for the record. */
  private literalField(): number {
    this.literal = true;
    return F_LITERAL | F_REBUILD;
  }

  private setField(n: number, s: number, e: number, flags: number): void {
    if (3 * n + 3 > this.fields.length) this.grow();
    const f = this.fields;
    f[3 * n] = s;
    f[3 * n + 1] = e;
    f[3 * n + 2] = flags;
    if (flags & F_REBUILD) this.rebuild = true;
  }

  private endAt(nf: number, s: number, e: number, flags: number, contentEnd: number, next: number): number {
    this.setField(nf, s, e, flags);
    this.fieldCount = nf + 1;
    this.contentEnd = contentEnd;
    return next;
  }

  private markMalformed(kind: number, field: number): void {
    if (this.malformed === MALFORMED_NONE) {
      this.malformed = kind;
      this.malformedField = field;
    }
  }
}

const S_START = 0;
const S_UNQUOTED = 1;
const S_QUOTED = 2;
/** A quote seen inside a quoted field: doubled, closing, or a literal — the next bytes decide. */
const S_QUOTE_IN_QUOTED = 3;
/** That quote followed by spaces/tabs. */
const S_QUOTE_BLANKS = 4;
/** That quote (and blanks) followed by a CR: closing if an LF comes next. */
const S_QUOTE_CR = 5;

export interface FinderState {
  s: number;
  /** LFs inside quoted fields seen so far (physical line numbering). */
  newlines: number;
  /** LFs seen before the quote that opened the current (or last) quoted field. */
  openQuoteNewlines: number;
  /** As RecordScanner's: the delimiter byte, the second blank byte, relaxed quotes. */
  readonly delimiter: number;
  readonly blank: number;
  readonly relaxed: boolean;
}

export function newFinderState(delimiter = COMMA, relaxed = false): FinderState {
  return { s: S_START, newlines: 0, openQuoteNewlines: 0, delimiter, blank: blankFor(delimiter), relaxed };
}

/** Back to the start of a record, keeping the state's delimiter and quote rules. */
export function resetFinderState(st: FinderState): void {
  st.s = S_START;
  st.newlines = 0;
  st.openQuoteNewlines = 0;
}

/** After the data ended in state `st`: is it inside a quoted field (an unterminated quote)? */
export function endsInsideQuotes(st: FinderState): boolean {
  return st.s === S_QUOTED || st.s === S_QUOTE_CR;
}

/** Continues the record automaton over `buf` from `from`; returns the index of the LF that ends
 * the record, or -1 (state saved) if the record continues past the end of `buf`. */
export function findRecordEnd(buf: Uint8Array, from: number, st: FinderState): number {
  let s = st.s;
  const D = st.delimiter;
  const B = st.blank;
  // What a quote that does not close its field leads to: a literal field (relaxed) or more quoted content.
  const notClosing = st.relaxed ? S_UNQUOTED : S_QUOTED;
  for (let i = from; i < buf.length; i++) {
    const c = buf[i]!;
    switch (s) {
      case S_QUOTED:
        if (c === QUOTE) s = S_QUOTE_IN_QUOTED;
        else if (c === LF) st.newlines++;
        continue;
      case S_QUOTE_IN_QUOTED:
      case S_QUOTE_BLANKS:
        if (c === LF) return i; // closed, and the record ends
        if (c === D) s = S_START;
        else if (c === CR) s = S_QUOTE_CR;
        else if (c === SP || c === B) s = S_QUOTE_BLANKS;
        else if (c === QUOTE) s = s === S_QUOTE_IN_QUOTED ? S_QUOTED : st.relaxed ? S_UNQUOTED : S_QUOTE_IN_QUOTED; // doubled, or a new quote after blanks
        else s = notClosing; // a literal quote: the field goes on
        continue;
      case S_QUOTE_CR:
        if (c === LF) return i;
        if (st.relaxed) s = c === D ? S_START : S_UNQUOTED; // the CR is a bare one in a literal field
        else s = c === QUOTE ? S_QUOTE_IN_QUOTED : S_QUOTED;
        continue;
      default: // S_START, S_UNQUOTED
        if (c === LF) return i;
        if (c === D) s = S_START;
        else if (s === S_START && c === QUOTE) {
          s = S_QUOTED;
          st.openQuoteNewlines = st.newlines;
        } else if (s === S_START && (c === SP || c === B)) s = S_START;
        else s = S_UNQUOTED;
    }
  }
  st.s = s;
  return -1;
}
