// A Writable that opens `COPY … FROM STDIN` on first need and forwards chunks to it, keeping
// backpressure: when Postgres is slow, this sink's callback waits, which pauses the whole pipeline
// back to the object-store read.
import { Writable } from 'node:stream';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';

type CopyStream = ReturnType<typeof copyFrom>;

export class CopySink extends Writable {
  private copy: CopyStream | null = null;
  private failure: Error | null = null;

  /** `statement` is asked for when the first chunk arrives (the column list comes from the header). */
  constructor(
    private readonly client: pg.PoolClient,
    private readonly statement: () => string,
  ) {
    super({ highWaterMark: 1 });
  }

  /** Rows Postgres reports as copied (valid after finish). */
  get rowCount(): number {
    return this.copy?.rowCount ?? 0;
  }

  private open(): CopyStream {
    if (!this.copy) {
      this.copy = this.client.query(copyFrom(this.statement()));
      this.copy.on('error', (err: Error) => {
        this.failure ??= err;
        this.destroy(err);
      });
    }
    return this.copy;
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    const copy = this.open();
    if (copy.write(chunk)) return cb(this.failure);
    const done = (err?: Error) => {
      copy.off('drain', onDrain);
      copy.off('error', onError);
      cb(err ?? this.failure);
    };
    const onDrain = () => done();
    const onError = (err: Error) => done(err);
    copy.once('drain', onDrain);
    copy.once('error', onError);
  }

  override _final(cb: (err?: Error | null) => void): void {
    const copy = this.open(); // a header-only file still runs an (empty) COPY: one code path
    copy.once('finish', () => cb(this.failure));
    copy.once('error', (err: Error) => cb(err));
    copy.end();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    // An aborted COPY must not leave the connection mid-protocol: pg-copy-streams sends CopyFail on destroy.
    if (this.copy && !this.copy.destroyed && err) this.copy.destroy(err);
    cb(err);
  }
}
