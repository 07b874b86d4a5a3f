// Readiness: can this process do its work right now? Postgres answers a query and the bucket answers.
import type pg from 'pg';
import type { ObjectStore } from '../storage/object-store.ts';

export type CheckResult = 'ok' | 'failed' | 'timeout';

export interface Readiness {
  ready: boolean;
  checks: { database: CheckResult; objectStore: CheckResult };
  /** the underlying errors, for the server's log only (they name hosts and ports) */
  errors: Partial<Record<'database' | 'objectStore', unknown>>;
}

const CHECK_TIMEOUT_MS = 2000;

export class TimeoutError extends Error {
  override name = 'TimeoutError';
}

/** Rejects after `ms`; the work itself carries on (a probe's query is harmless). */
export function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

export async function checkReadiness(
  pool: Pick<pg.Pool, 'query'>,
  store: Pick<ObjectStore, 'ping'>,
  timeoutMs = CHECK_TIMEOUT_MS,
): Promise<Readiness> {
  const errors: Readiness['errors'] = {};
  const run = async (name: 'database' | 'objectStore', work: () => Promise<unknown>): Promise<CheckResult> => {
    try {
      await withTimeout(work(), timeoutMs);
      return 'ok';
    } catch (err) {
      errors[name] = err;
      return err instanceof TimeoutError ? 'timeout' : 'failed';
    }
  };
  const [database, objectStore] = await Promise.all([
    run('database', () => pool.query('SELECT 1')),
    run('objectStore', () => store.ping()),
  ]);
  return { ready: database === 'ok' && objectStore === 'ok', checks: { database, objectStore }, errors };
}
