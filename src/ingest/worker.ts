// The worker role: graphile-worker runs `process-upload` jobs under a supervisor that keeps every
// job either running under a live lease or released, and every upload on its way to a final state.
//
// Each beat (every quarter lease): renew this process's leases; release the jobs of dead identities;
// retire an own identity that lost its lease, holds a job it does not run, or whose runner stopped
// on its own; mark lost uploads failed (lifecycle sweep). Between beats a watchdog aborts the running
// jobs of an identity whose lease could not be renewed for three quarters of a lease — before it
// lapses and another worker takes the job over.
import { createDb } from '../db/pool.ts';
import { createRecoverTask, RECOVER_ENDPOINT_TASK } from '../notify/recover.ts';
import { createOrphanSweepTask, ORPHAN_SWEEP_TASK } from '../retention/orphans.ts';
import { createPurgeTask, PURGE_TASK, retentionCronItems } from '../retention/purge.ts';
import type { Runtime } from '../runtime.ts';
import { createDirectExpiryTask, DIRECT_EXPIRY_TASK, directUploadCronItems } from '../uploads/direct-expiry.ts';
import { PROCESS_UPLOAD_TASK } from '../uploads/uploads.repository.ts';
import { dropLeases, forgetOldLeases, jobsLockedBy, releaseDeadWorkers, renewLeases } from './leases.ts';
import { createProcessUploadTask, type ProcessDeps } from './process-upload.ts';
import { startQueueRunner, type QueueRunner } from './queue-runner.ts';
import { failLostUpload, findLostUploads } from './upload-state.ts';

export interface WorkerHandle {
  /** Stops taking jobs, waits for the running ones, then gives up its leases. */
  stop(): Promise<void>;
}

type WorkerRuntime = Pick<Runtime, 'pool' | 'store' | 'logger' | 'config'>;

const RESTART_MIN_MS = 500;
const RESTART_MAX_MS = 5_000;

/**
 * Starts the worker role. Resolves once the first runner is up (so a wrong database fails the
 * start); afterwards, a runner that cannot start (database away) is retried with backoff.
 * `extra` overrides the process-upload task's dependencies (tests: fault injection, throttles).
 */
export async function startWorker(rt: WorkerRuntime, extra: Partial<ProcessDeps> = {}): Promise<WorkerHandle> {
  const log = rt.logger.child({ role: 'worker' });
  const leaseSeconds = rt.config.worker.leaseSeconds;
  const leaseMs = leaseSeconds * 1000;
  const abortAfterMs = (leaseMs * 3) / 4;
  const runners = new Set<QueueRunner>(); // every identity still holding a lease (current + retiring)
  const lost = new Set<QueueRunner>(); // identities whose lease lapsed or could not be renewed in time
  const orphanSince = new Map<string, number>(); // job id → when first seen locked by us but not running
  let current: QueueRunner | null = null;
  let stopping = false;
  let restartTimer: NodeJS.Timeout | null = null;
  let restartDelayMs = RESTART_MIN_MS;
  // A query builder over the runtime's pool (never destroyed here: that would end the pool).
  const db = createDb(rt.pool);

  const start = async (): Promise<QueueRunner> => {
    const runner = await startQueueRunner({
      pool: rt.pool,
      concurrency: rt.config.worker.concurrency,
      log,
      parsedCronItems: [...retentionCronItems(), ...directUploadCronItems()],
      tasks: (abortSignal) => ({
        [PROCESS_UPLOAD_TASK]: createProcessUploadTask({ pool: rt.pool, store: rt.store, logger: log, gzip: rt.config.gzip, abortSignal, ...extra }),
        [PURGE_TASK]: createPurgeTask({ pool: rt.pool, store: rt.store, logger: log, retentionDays: rt.config.retentionDays }),
        [ORPHAN_SWEEP_TASK]: createOrphanSweepTask({ pool: rt.pool, store: rt.store, logger: log, graceMs: rt.config.orphanGraceHours * 3_600_000 }),
        [DIRECT_EXPIRY_TASK]: createDirectExpiryTask({ db, store: rt.store, logger: log }),
        [RECOVER_ENDPOINT_TASK]: createRecoverTask({ pool: rt.pool, logger: log }),
      }),
    });
    if (stopping) {
      await runner.stop();
      throw new Error('the worker is stopping');
    }
    runners.add(runner);
    current = runner;
    restartDelayMs = RESTART_MIN_MS;
    armWatchdog();
    log.info({ workerId: runner.id }, 'worker identity started');
    void runner.exited.then(() => {
      if (current === runner && !stopping) retire(runner, 'its runner stopped on its own');
    });
    return runner;
  };

  const scheduleStart = () => {
    if (stopping || restartTimer || current) return;
    restartTimer = setTimeout(() => {
      restartTimer = null;
      start().catch((err: unknown) => {
        log.warn({ err, retryInMs: restartDelayMs }, 'could not start a worker runner; retrying');
        restartDelayMs = Math.min(RESTART_MAX_MS, restartDelayMs * 2);
        scheduleStart();
      });
    }, restartDelayMs);
  };

  /** Takes no more jobs under this identity and replaces it; its lease goes once its jobs are done. */
  function retire(runner: QueueRunner, reason: string): void {
    if (current === runner) {
      current = null;
      log.warn({ workerId: runner.id, reason }, 'retiring worker identity');
      scheduleStart();
    }
    void runner.stop().then(async () => {
      runners.delete(runner);
      lost.delete(runner);
      // Whatever it still holds (a job whose fail write was lost) is released on the next sweep.
      await dropLeases(rt.pool, [runner.id]).catch(() => {});
    });
  }

  function loseLease(runner: QueueRunner, reason: string): void {
    if (lost.has(runner)) return;
    lost.add(runner);
    log.warn({ workerId: runner.id, reason, running: [...runner.runningJobs] }, 'lease lost: aborting this identity\'s jobs');
    runner.abortJobs(reason);
    retire(runner, reason);
  }

  // The watchdog fires exactly when the oldest renewal of a live identity becomes too old (not on
  // the next beat, which could be after the lease lapsed).
  let watchdogTimer: NodeJS.Timeout | null = null;
  const watchdog = () => {
    watchdogTimer = null;
    const now = Date.now();
    for (const runner of runners) {
      if (!lost.has(runner) && now - runner.lastRenewedAt >= abortAfterMs) {
        loseLease(runner, `no lease renewal for ${Math.round((now - runner.lastRenewedAt) / 1000)} s`);
      }
    }
    armWatchdog();
  };
  const armWatchdog = () => {
    if (watchdogTimer) clearTimeout(watchdogTimer);
    watchdogTimer = null;
    const live = [...runners].filter((r) => !lost.has(r));
    if (live.length === 0) return;
    const deadline = Math.min(...live.map((r) => r.lastRenewedAt)) + abortAfterMs;
    watchdogTimer = setTimeout(watchdog, Math.max(0, deadline - Date.now()));
  };

  const renew = async () => {
    const live = [...runners].filter((r) => !lost.has(r));
    const sentAt = Date.now();
    const renewed = await renewLeases(rt.pool, live.map((r) => r.id), leaseSeconds);
    for (const runner of live) {
      if (renewed.has(runner.id)) runner.lastRenewedAt = sentAt;
      else loseLease(runner, 'its lease had lapsed');
    }
    armWatchdog();
  };

  /** A job locked by a live identity of ours that none of our workers runs (its start or end write was lost). */
  const findOrphans = async () => {
    const runner = current;
    if (!runner) return;
    const held = await jobsLockedBy(rt.pool, [runner.id]);
    const now = Date.now();
    const orphans = held.filter((j) => !runner.runningJobs.has(j.id));
    for (const id of orphanSince.keys()) if (!orphans.some((o) => o.id === id)) orphanSince.delete(id);
    for (const { id } of orphans) {
      const since = orphanSince.get(id) ?? now;
      orphanSince.set(id, since);
      if (now - since >= leaseMs && current === runner) {
        orphanSince.clear();
        retire(runner, `it holds job ${id} that none of its workers runs`);
      }
    }
  };

  const sweep = async () => {
    const released = await releaseDeadWorkers(rt.pool, leaseSeconds);
    if (released.length) log.warn({ workers: released }, 'released jobs of workers whose lease expired');
    for (const uploadId of await findLostUploads(rt.pool, leaseSeconds)) {
      if (await failLostUpload(rt.pool, uploadId, leaseSeconds)) {
        log.warn({ uploadId }, 'upload failed: its worker was lost and no attempt is left (worker_lost)');
      }
    }
    await forgetOldLeases(rt.pool);
  };

  let beat: Promise<void> | null = null;
  const tick = () => {
    if (beat) return; // a slow beat is not stacked (the watchdog runs on its own timer)
    beat = (async () => {
      try {
        await renew();
        await findOrphans();
        await sweep();
      } catch (err) {
        log.warn({ err }, 'worker heartbeat failed');
      } finally {
        beat = null;
      }
    })();
  };

  await start();
  tick();
  await beat;
  const timer = setInterval(tick, Math.max(250, leaseMs / 4));
  log.info({ concurrency: rt.config.worker.concurrency, leaseSeconds }, 'worker started');

  return {
    async stop() {
      stopping = true;
      if (restartTimer) clearTimeout(restartTimer);
      // Running jobs finish first. Keep renewing the lease meanwhile: a load that outlives one lease
      // must not be mistaken for a dead worker's and run twice.
      await Promise.all([...runners].map((r) => r.stop()));
      clearInterval(timer);
      await beat;
      if (watchdogTimer) clearTimeout(watchdogTimer);
      await dropLeases(rt.pool, [...runners].map((r) => r.id)).catch(() => {});
    },
  };
}
