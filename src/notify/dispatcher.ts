// The dispatcher role. Expands committed events into deliveries (one per target), then sends them.
// Wakes when an event or a delivery commits (LISTEN/NOTIFY), when a retry or an expired
// lease falls due (a timer set from the database), and on a slow fallback sweep; keeps up to
// `concurrency` attempts in flight, claiming more as slots free up; an endpoint holds at most
// ENDPOINT_MAX_IN_FLIGHT of them across all dispatchers and every receiver is claimed fairly beside
// the others (isolation.ts), so one slow receiver never holds up the others. Any number of dispatchers may run: claims are disjoint (SKIP LOCKED) and fenced.
import { readFileSync } from 'node:fs';
import { observeDeliveryAttempt } from '../metrics/index.ts';
import type { Runtime } from '../runtime.ts';
import { attemptDelivery, type AttemptDeps } from './attempt.ts';
import { createEmailChannel } from './channels/email.ts';
import { channels } from './channels/index.ts';
import { createDeliverer } from './deliver.ts';
import { expandAll } from './expand.ts';
import { listen, type Listener } from './listener.ts';
import { claimDue, claimProbes, DUE_CHANNEL, msUntilNextDue, type ClaimedDelivery } from './outbox.repository.ts';
import { allowListOf } from './ssrf.ts';

export interface DispatcherHandle {
  /** Stops claiming, lets in-flight attempts finish and be recorded (each bounded by the timeout). */
  stop(): Promise<void>;
}

export interface DispatcherOptions {
  /** attempts in flight at once; defaults to WEBHOOK_CONCURRENCY */
  concurrency?: number;
  /** rows claimed per query */
  batchSize?: number;
  /** fallback sweep, should a notification ever be lost */
  sweepIntervalMs?: number;
  /** how long a claim owns a row; defaults to the attempt timeout plus a margin */
  leaseMs?: number;
  /** the clock of attempts, probes and endpoint health (ms); tests inject one to move time on */
  now?: () => number;
  random?: () => number;
}

export { DUE_CHANNEL };
export const USER_AGENT = `stream-api/${packageVersion()}`;

type DispatcherRuntime = Pick<Runtime, 'pool' | 'config' | 'logger' | 'databaseUrl'>;

/**
 * An attempt ends within timeoutMs (deliver.ts enforces one deadline for all of it); the margin
 * covers claiming and recording it. A lease that lapses anyway only costs a duplicate send, never a
 * double record: finishing an attempt is fenced by the lease token, and the claim that took over
 * closes the stale attempt as `interrupted`.
 */
export function defaultLeaseMs(timeoutMs: number): number {
  return Math.round(timeoutMs * 1.5) + 1000;
}

export async function startDispatcher(rt: DispatcherRuntime, opts: DispatcherOptions = {}): Promise<DispatcherHandle> {
  const log = rt.logger.child({ role: 'dispatcher' });
  const cfg = rt.config.webhook;
  const concurrency = opts.concurrency ?? cfg.concurrency;
  const maxInFlight = rt.config.endpoints.maxInFlight;
  const batchSize = Math.min(opts.batchSize ?? 16, concurrency);
  const sweepIntervalMs = opts.sweepIntervalMs ?? 5000;
  const leaseMs = opts.leaseMs ?? defaultLeaseMs(cfg.timeoutMs);
  const deliverer = createDeliverer({
    timeoutMs: cfg.timeoutMs,
    allowedCidrs: allowListOf(cfg.allowedCidrs),
    userAgent: USER_AGENT,
  });
  // email only with SMTP configured (the API refuses email endpoints otherwise)
  const email = rt.config.smtp
    ? createEmailChannel({ smtp: rt.config.smtp, timeoutMs: cfg.timeoutMs, pool: rt.pool, publicUrl: rt.config.publicUrl })
    : null;
  const deps: AttemptDeps = {
    pool: rt.pool,
    deliverer,
    channels: email ? { ...channels, email } : channels,
    retry: { maxRetries: cfg.maxRetries, baseMs: cfg.backoffBaseMs, maxMs: cfg.backoffMaxMs },
    breaker: {
      threshold: rt.config.endpoints.breakerThreshold,
      probeBaseMs: rt.config.endpoints.probeBaseMs,
      probeMaxMs: rt.config.endpoints.probeMaxMs,
      disableAfterMs: rt.config.endpoints.disableAfterHours * 3_600_000,
    },
    now: opts.now ?? Date.now,
    ...(opts.random ? { random: opts.random } : {}),
  };

  const inFlight = new Set<Promise<void>>();
  let filling: Promise<void> | null = null;
  let again = false;
  let stopping = false;
  let dueTimer: NodeJS.Timeout | null = null;

  function wake(): void {
    if (stopping) return;
    if (filling) {
      again = true; // the running fill loops once more, so this wake-up is not lost
      return;
    }
    filling = fill().finally(() => {
      filling = null;
      if (again) wake();
    });
  }

  async function fill(): Promise<void> {
    try {
      do {
        again = false;
        // Events first: their deliveries are then due with the rest (expansion is idempotent, so
        // dispatchers racing on it, or one dying right after it, lose and duplicate nothing).
        if (!stopping) await expandAll(rt.pool, batchSize * 4);
        // Open breakers first: one probe each, when due (claimProbes keeps it to one across dispatchers).
        const probeRoom = Math.min(batchSize, concurrency - inFlight.size);
        if (!stopping && probeRoom > 0) {
          for (const delivery of await claimProbes(rt.pool, probeRoom, leaseMs, cfg.maxRetries, new Date(deps.now()))) track(delivery);
        }
        for (;;) {
          const room = Math.min(batchSize, concurrency - inFlight.size);
          if (stopping || room <= 0) return; // a finishing attempt wakes us again
          const batch = await claimDue(rt.pool, room, leaseMs, cfg.maxRetries, new Date(deps.now()), maxInFlight);
          for (const delivery of batch) track(delivery);
          if (batch.length < room) break;
        }
      } while (again && !stopping);
      await scheduleNextDue();
    } catch (err) {
      log.warn({ err }, 'expanding events or claiming due deliveries failed; the sweep will try again');
    }
  }

  /** Backoff delays are often shorter than the sweep: wake exactly when the next row falls due. */
  async function scheduleNextDue(): Promise<void> {
    const ms = await msUntilNextDue(rt.pool);
    if (stopping || ms === null || ms >= sweepIntervalMs) return;
    if (dueTimer) clearTimeout(dueTimer);
    // Rows due now that the claim left are held by an endpoint's cap: a finishing attempt wakes us.
    dueTimer = setTimeout(() => {
      dueTimer = null;
      wake();
    }, Math.max(10, Math.ceil(ms)));
  }

  function track(delivery: ClaimedDelivery): void {
    if (delivery.interrupted_attempt !== null) {
      log.warn(
        { deliveryId: delivery.id, attempt: delivery.interrupted_attempt, budgetSpent: delivery.budget_spent },
        delivery.budget_spent
          ? 'closed an attempt whose outcome was never recorded (interrupted); retry budget spent, delivery failed'
          : 'closed an attempt whose outcome was never recorded (interrupted); sending again',
      );
    }
    if (delivery.budget_spent) return; // the claim settled it `failed`: nothing to send
    const attempt = runAttempt(delivery).finally(() => {
      inFlight.delete(attempt);
      wake();
    });
    inFlight.add(attempt);
  }

  async function runAttempt(delivery: ClaimedDelivery): Promise<void> {
    try {
      const report = await attemptDelivery(deps, delivery);
      observeDeliveryAttempt(report);
      const fields = {
        deliveryId: delivery.id,
        attempt: report.number,
        status: report.result.statusCode,
        error: report.result.errorCode,
        durationMs: report.result.durationMs,
        outcome: report.outcome.status,
        ...(delivery.probe && { probe: true }),
      };
      if (report.healthError) log.error({ err: report.healthError, endpointId: delivery.endpoint_id }, 'endpoint health could not be updated');
      if (report.health?.opened) log.warn({ endpointId: delivery.endpoint_id }, 'endpoint circuit breaker opened: its deliveries wait for a successful probe');
      if (report.health?.closed) log.info({ endpointId: delivery.endpoint_id }, 'endpoint circuit breaker closed: its deliveries flow again');
      if (report.health?.disable) log.warn({ endpointId: delivery.endpoint_id }, 'endpoint disabled after failing for ENDPOINT_DISABLE_AFTER_HOURS');
      if (report.recorded) log.info(fields, 'delivery attempt');
      else log.warn(fields, 'lease lost while sending (taken over or redelivered); the next claim closes this attempt as interrupted');
    } catch (err) {
      // Not recorded (database unavailable?). The lease is kept on purpose: when it lapses the row
      // is sent again with the same webhook-id, after a pause instead of in a tight loop, and the
      // claim that takes it closes a started attempt as `interrupted`.
      log.error({ err, deliveryId: delivery.id }, 'delivery attempt could not be recorded');
    }
  }

  const listener: Listener = await listen({
    databaseUrl: rt.databaseUrl,
    channel: DUE_CHANNEL,
    onWake: wake,
    log,
    applicationName: 'stream-api:dispatcher-listen',
  });
  const sweep = setInterval(wake, sweepIntervalMs);
  log.info({ concurrency, maxInFlight, batchSize, leaseMs, maxRetries: cfg.maxRetries, timeoutMs: cfg.timeoutMs }, 'dispatcher started');

  let stopped: Promise<void> | null = null;
  async function stop(): Promise<void> {
    stopping = true;
    clearInterval(sweep);
    if (dueTimer) clearTimeout(dueTimer);
    await listener.close();
    while (filling || inFlight.size > 0) await Promise.all([filling, ...inFlight]);
    await deliverer.close();
    await email?.close();
    log.info('dispatcher stopped');
  }
  return { stop: () => (stopped ??= stop()) };
}

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
  } catch {
    return '0.0.0';
  }
}
