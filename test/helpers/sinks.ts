// Fault injection around the real COPY sink (ProcessDeps.wrapSink): hold a load mid-COPY until the
// test lets it go, fail it, or slow its end. The rows still go through the real CopySink.
import { Writable } from 'node:stream';
import type { CopySink } from '../../src/ingest/copy-sink.ts';

export interface SinkGate {
  /** the wrapSink hook: the first load it wraps is held; later ones pass straight through */
  wrap: (sink: CopySink) => Writable;
  /** resolves when the held load has reached COPY (its first chunk is waiting) */
  reached: Promise<void>;
  /** lets the held load carry on */
  open(): void;
  /** fails the held load with `err` (as if the sink had failed) */
  fail(err: Error): void;
}

/**
 * Holds the first chunk of the first load until open() or fail(). With `failWith`, any error of the
 * underlying sink (e.g. its connection ended) surfaces as that error instead.
 */
export function sinkGate(opts: { failWith?: () => Error } = {}): SinkGate {
  let reachedResolve!: () => void;
  const reached = new Promise<void>((r) => (reachedResolve = r));
  let release: ((err?: Error) => void) | null = null;
  let decided: { err?: Error } | null = null;
  let used = false;
  return {
    reached,
    open: () => decide({}),
    fail: (err) => decide({ err }),
    wrap(sink) {
      if (used) return sink;
      used = true;
      return forward(sink, {
        beforeFirst: (_chunk, cb) => {
          if (decided) return cb(decided.err);
          release = (err) => cb(err);
          reachedResolve();
        },
        mapError: opts.failWith,
      });
    },
  };
  function decide(d: { err?: Error }) {
    decided ??= d;
    release?.(decided.err);
    release = null;
  }
}

/** Delays the end of COPY by `delayMs` and records when the sink really finished (ms since epoch). */
export function slowFinish(delayMs: number): { wrap: (sink: CopySink) => Writable; finishedAt: () => number | null } {
  let finishedAt: number | null = null;
  return {
    finishedAt: () => finishedAt,
    wrap(sink) {
      return forward(sink, {
        final: (done) => {
          setTimeout(() => {
            sink.once('finish', () => {
              finishedAt = Date.now();
              done();
            });
            sink.once('error', done);
            sink.end();
          }, delayMs);
        },
      });
    },
  };
}

/**
 * A Writable in front of `sink`: `beforeFirst` may hold the first chunk; `final` replaces the
 * default end (end the sink, wait for it). Errors of the sink fail this stream too (as
 * `mapError()` when given).
 */
function forward(
  sink: Writable,
  opts: {
    beforeFirst?: (chunk: Buffer, cb: (err?: Error | null) => void) => void;
    final?: (done: (err?: Error | null) => void) => void;
    mapError?: () => Error;
  },
): Writable {
  const { beforeFirst, final, mapError } = opts;
  let first = true;
  const out: Writable = new Writable({
    highWaterMark: 1,
    write(chunk: Buffer, _enc, cb) {
      const pass = (err?: Error | null) => {
        if (err) return cb(err);
        if (sink.write(chunk)) cb();
        else sink.once('drain', () => cb());
      };
      if (first && beforeFirst) {
        first = false;
        beforeFirst(chunk, pass);
      } else pass();
    },
    final(cb) {
      if (final) return final(cb);
      sink.once('finish', () => cb());
      sink.once('error', cb);
      sink.end();
    },
    destroy(err, cb) {
      if (!sink.destroyed) sink.destroy(err ?? undefined);
      cb(err);
    },
  });
  sink.on('error', (err) => out.destroy(mapError ? mapError() : err));
  return out;
}
