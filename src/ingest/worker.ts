// The worker role: graphile-worker runs `process-upload` jobs; a lease loop makes crashes visible fast.
import { EventEmitter } from 'node:events';
import { Logger as GraphileLogger, run, type Runner, type WorkerEvents } from 'graphile-worker';
import { createOrphanSweepTask, ORPHAN_SWEEP_TASK } from '../retention/orphans.ts';
import { createPurgeTask, PURGE_TASK, retentionCronItems } from '../retention/purge.ts';
import type { Runtime } from '../runtime.ts';
import { PROCESS_UPLOAD_TASK } from '../uploads/uploads.repository.ts';
import { dropLeases, releaseDeadWorkers, renewLeases } from './leases.ts';
import { createProcessUploadTask, type ProcessDeps } from './process-upload.ts';

export interface WorkerHandle {
  stop(): Promise<void>;
}

type WorkerRuntime = Pick<Runtime, 'pool' | 'store' | 'logger' | 'config'>;

export async function startWorker(rt: WorkerRuntime, extra: Partial<ProcessDeps> = {}): Promise<WorkerHandle> {
  const log = rt.logger.child({ role: 'worker' });
  const leaseSeconds = rt.config.worker.leaseSeconds;
  const workerIds = new Set<string>();
  const events: WorkerEvents = new EventEmitter() as WorkerEvents;
  // graphile-worker locks jobs in the name of the worker pool (jobs.locked_by = pool id).
  events.on('pool:create', ({ workerPool }) => workerIds.add(workerPool.id));

  const heartbeat = async () => {
    try {
      await renewLeases(rt.pool, [...workerIds], leaseSeconds);
      const released = await releaseDeadWorkers(rt.pool, leaseSeconds);
      if (released.length) log.warn({ workers: released }, 'released jobs of workers whose lease expired');
    } catch (err) {
      log.warn({ err }, 'lease heartbeat failed');
    }
  };

  const runner: Runner = await run({
    pgPool: rt.pool,
    concurrency: rt.config.worker.concurrency,
    noHandleSignals: true, // our process owns signals and shuts every role down in order
    pollInterval: 1000,
    events,
    logger: graphileLogger(log),
    parsedCronItems: retentionCronItems(),
    taskList: {
      [PROCESS_UPLOAD_TASK]: createProcessUploadTask({ pool: rt.pool, store: rt.store, logger: log, ...extra }),
      [PURGE_TASK]: createPurgeTask({ pool: rt.pool, store: rt.store, logger: log, retentionDays: rt.config.retentionDays }),
      [ORPHAN_SWEEP_TASK]: createOrphanSweepTask({ pool: rt.pool, store: rt.store, logger: log, graceMs: rt.config.orphanGraceHours * 3_600_000 }),
    },
  });
  let beat: Promise<void> = heartbeat();
  await beat;
  // Renew at a third of the lease so one missed beat does not expire it.
  const timer = setInterval(() => (beat = heartbeat()), Math.max(500, (leaseSeconds * 1000) / 3));
  log.info({ concurrency: rt.config.worker.concurrency, leaseSeconds }, 'worker started');

  return {
    async stop() {
      // graphile-worker's stop waits for running jobs. Keep renewing the lease meanwhile: a load
      // that outlives one lease must not be mistaken for a dead worker's and run twice.
      await runner.stop();
      clearInterval(timer);
      await beat;
      await dropLeases(rt.pool, [...workerIds]).catch(() => {});
    },
  };
}

function graphileLogger(log: WorkerRuntime['logger']): GraphileLogger {
  return new GraphileLogger((scope) => (level, message, meta) => {
    const line = { scope, ...meta };
    if (level === 'error') log.error(line, message);
    else if (level === 'warning') log.warn(line, message);
    else log.debug(line, message);
  });
}
