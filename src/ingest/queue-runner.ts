// One graphile-worker runner = one worker identity (the `locked_by` of the jobs it takes). The worker
// role supervises these: an identity that can no longer vouch for its jobs is retired, never reused.
import { EventEmitter } from 'node:events';
import { Logger as GraphileLogger, run, type Runner, type TaskList, type WorkerEvents } from 'graphile-worker';
import type pg from 'pg';
import type { Logger } from '../logger.ts';

export interface QueueRunnerOptions {
  pool: pg.Pool;
  concurrency: number;
  log: Logger;
  /** the tasks, given the signal that aborts this identity's running jobs */
  tasks: (abortSignal: AbortSignal) => TaskList;
  parsedCronItems: Parameters<typeof run>[0]['parsedCronItems'];
}

/**
 * A started runner. `id` is graphile-worker's pool id, which it writes to `jobs.locked_by`.
 * `exited` resolves when the runner has stopped, for whatever reason (asked to, or on its own after
 * a job's complete/fail write failed: graphile-worker then shuts the pool down).
 */
export interface QueueRunner {
  readonly id: string;
  /** Date.now() of the last lease renewal sent for this identity that the database accepted */
  lastRenewedAt: number;
  /** jobs this identity is running (from job:start until the task has settled) */
  readonly runningJobs: ReadonlySet<string>;
  readonly exited: Promise<void>;
  /** Aborts every running job of this identity (they roll back and throw StaleRun). */
  abortJobs(reason: string): void;
  /** Stops taking jobs and waits for the running ones (graceful). Idempotent. */
  stop(): Promise<void>;
}

export async function startQueueRunner(opts: QueueRunnerOptions): Promise<QueueRunner> {
  const events: WorkerEvents = new EventEmitter() as WorkerEvents;
  const abort = new AbortController();
  const running = new Set<string>();
  let id: string | null = null;
  events.on('pool:create', ({ workerPool }) => (id ??= workerPool.id));
  events.on('job:start', ({ job }) => running.add(String(job.id)));
  events.on('job:complete', ({ job }) => running.delete(String(job.id)));
  events.on('pool:gracefulShutdown', ({ message }) => opts.log.info({ workerId: id, reason: message }, 'worker identity stopping'));

  const runner: Runner = await run({
    pgPool: opts.pool,
    concurrency: opts.concurrency,
    noHandleSignals: true, // our process owns signals and shuts every role down in order
    pollInterval: 1000,
    events,
    logger: graphileLogger(opts.log),
    parsedCronItems: opts.parsedCronItems,
    taskList: opts.tasks(abort.signal),
    // Batched (delay 0) complete/fail writes: a write that fails (the database went away) is handled
    // by graphile-worker — it shuts this runner down — instead of being an unhandled rejection that
    // ends the process. The supervisor then retires this identity; its job is released like a dead
    // worker's once the lease lapses.
    preset: { worker: { completeJobBatchDelay: 0, failJobBatchDelay: 0 } },
  });
  if (id === null) throw new Error('graphile-worker did not report its pool id');
  // Its workers ask for their first job only now: the lease clock of this identity starts here.
  const startedAt = Date.now();
  const workerId: string = id;
  let stopping: Promise<void> | null = null;
  const exited = runner.promise.then(
    () => {},
    (err: unknown) => opts.log.warn({ err, workerId }, 'worker identity exited with an error'),
  );
  return {
    id: workerId,
    lastRenewedAt: startedAt,
    runningJobs: running,
    exited,
    abortJobs(reason) {
      if (!abort.signal.aborted) abort.abort(new Error(reason));
    },
    stop() {
      stopping ??= runner.stop().catch((err: unknown) => {
        // "Runner is already stopped": it exited on its own.
        opts.log.debug({ err, workerId }, 'runner stop');
      });
      return stopping.then(() => exited);
    },
  };
}

function graphileLogger(log: Logger): GraphileLogger {
  return new GraphileLogger((scope) => (level, message, meta) => {
    const line = { scope, ...meta };
    if (level === 'error') log.error(line, message);
    else if (level === 'warning') log.warn(line, message);
    else log.debug(line, message);
  });
}
