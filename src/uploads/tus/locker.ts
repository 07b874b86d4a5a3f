// Exclusive access to one tus upload across every API process: @tus/server takes a lock around each
// HEAD, PATCH and DELETE of an upload. Its MemoryLocker is per process, so two processes could write
// parts of the same upload at once and corrupt it; this locker adds a Postgres advisory lock, held on
// a connection of its own for as long as the request holds the upload (a process that dies drops its
// connection, and the lock with it).
import { MemoryLocker, type Lock, type Locker, type RequestRelease } from '@tus/server';
import type pg from 'pg';
import { UPLOAD_LOCKED } from './errors.ts';

/** Advisory locks are (namespace, hashtext(id)): the namespace keeps ours apart from anyone else's. */
const LOCK_NAMESPACE = 0x7475_7300; // "tus\0"
const POLL_MS = 100;

/**
 * In the process: @tus/server's MemoryLocker, whose hand-over asks the request holding the upload to
 * stop (a client that resumes has usually lost its previous connection). Across processes: a
 * Postgres advisory lock, waited for at most `waitMs`, then 423 upload_locked (tus-js-client retries
 * 423). A holder in another process is not asked to stop; a dead client's request ends at
 * BODY_IDLE_TIMEOUT_MS, which frees the lock.
 */
export class PgAdvisoryLocker implements Locker {
  private readonly local = new MemoryLocker();

  /** `pool`: connections for held locks only (one per request that holds an upload). */
  constructor(
    private readonly pool: pg.Pool,
    private readonly waitMs = 3000,
  ) {}

  newLock(id: string): Lock {
    return new PgAdvisoryLock(id, this.pool, this.local.newLock(id), this.waitMs);
  }
}

class PgAdvisoryLock implements Lock {
  private client: pg.PoolClient | null = null;

  constructor(
    private readonly id: string,
    private readonly pool: pg.Pool,
    private readonly local: Lock,
    private readonly waitMs: number,
  ) {}

  async lock(signal: AbortSignal, requestRelease: RequestRelease): Promise<void> {
    await this.local.lock(signal, requestRelease);
    try {
      const client = await this.pool.connect();
      try {
        const deadline = Date.now() + this.waitMs;
        while (!(await this.tryLock(client))) {
          if (signal.aborted || Date.now() >= deadline) throw UPLOAD_LOCKED;
          await new Promise((resolve) => setTimeout(resolve, POLL_MS));
        }
      } catch (err) {
        client.release();
        throw err;
      }
      this.client = client;
    } catch (err) {
      await this.local.unlock();
      throw err;
    }
  }

  async unlock(): Promise<void> {
    const client = this.client;
    this.client = null;
    try {
      if (client) {
        await client.query('SELECT pg_advisory_unlock($1, hashtext($2))', [LOCK_NAMESPACE, this.id]);
        client.release();
      }
    } catch (err) {
      // A broken connection has dropped the lock with it: discard the connection.
      client?.release(err as Error);
    } finally {
      await this.local.unlock();
    }
  }

  private async tryLock(client: pg.PoolClient): Promise<boolean> {
    const { rows } = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1, hashtext($2)) AS locked', [LOCK_NAMESPACE, this.id]);
    return rows[0]?.locked === true;
  }
}
