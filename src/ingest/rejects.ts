// Rejected rows go to upload_errors in batches, from outside the load transaction (the load's
// connection is busy with COPY). The first `cap` per upload are stored; all are counted.
import type pg from 'pg';
import type { Reject } from './csv/index.ts';

const BATCH = 500;

export class RejectRecorder {
  private batch: Reject[] = [];
  private stored = 0;
  private pending: Promise<void> = Promise.resolve();
  private failure: Error | null = null;

  constructor(
    private readonly pool: pg.Pool,
    private readonly uploadId: string,
    private readonly cap: number,
  ) {}

  /** A new attempt starts from a clean slate (rows of a crashed attempt may have been stored). */
  async reset(): Promise<void> {
    await this.pool.query('DELETE FROM upload_errors WHERE upload_id = $1', [this.uploadId]);
  }

  /** How many more rejects the cap allows storing (after flush: the ones added are then stored). */
  get room(): number {
    return Math.max(0, this.cap - this.stored - this.batch.length);
  }

  add(reject: Reject): void {
    if (this.stored + this.batch.length >= this.cap) return;
    this.batch.push(reject);
    if (this.batch.length >= BATCH) this.writeBatch();
  }

  /** Waits for every batch; throws if one failed. */
  async flush(): Promise<void> {
    this.writeBatch();
    await this.pending;
    if (this.failure) throw this.failure;
  }

  private writeBatch(): void {
    if (this.batch.length === 0) return;
    const rows = this.batch;
    this.batch = [];
    this.stored += rows.length;
    // Chained: batches are written in order and at most one at a time, which bounds memory.
    this.pending = this.pending.then(() =>
      this.pool
        .query(
          `INSERT INTO upload_errors (upload_id, line, column_name, code, message, raw)
           SELECT $1, * FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[])
           ON CONFLICT (upload_id, line) DO NOTHING`,
          [
            this.uploadId,
            rows.map((r) => r.line),
            rows.map((r) => r.column),
            rows.map((r) => r.code),
            rows.map((r) => r.message),
            rows.map((r) => r.raw),
          ],
        )
        .then(
          () => {},
          (err: Error) => {
            this.failure ??= err;
          },
        ),
    );
  }
}
