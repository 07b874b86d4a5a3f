// One delivery attempt for a claimed outbox row (the claim recorded it as started): build the request
// with the row's channel, send it, decide what happens next, record the outcome and the new state.
import type pg from 'pg';
import type { BreakerOptions, HealthTransition } from './breaker-policy.ts';
import type { Channel } from './channels/index.ts';
import type { Deliverer } from './deliver.ts';
import { recordEndpointAttempt, verdictOf } from './health.repository.ts';
import { finishAttempt, type ClaimedDelivery } from './outbox.repository.ts';
import { decideOutcome, type Outcome, type RetryOptions } from './retry-policy.ts';
import type { AttemptResult } from './types.ts';

export interface AttemptDeps {
  pool: pg.Pool;
  deliverer: Deliverer;
  channels: Readonly<Record<string, Channel>>;
  retry: RetryOptions;
  /** the endpoints' circuit breaker and auto-disable */
  breaker: BreakerOptions;
  now: () => number;
  random?: () => number;
}

export interface AttemptReport {
  number: number;
  result: AttemptResult;
  outcome: Outcome;
  /** false: the lease was lost while sending, so another claim owns the row and nothing was written */
  recorded: boolean;
  /** what the attempt did to its endpoint's health (endpoint deliveries that were recorded) */
  health?: HealthTransition | null;
  /** the attempt is recorded but its endpoint's health could not be updated */
  healthError?: unknown;
}

/**
 * Sends the attempt the claim started and finishes its row. Throws when the database fails; the
 * lease then lapses and the next claim closes the attempt as `interrupted`.
 */
export async function attemptDelivery(deps: AttemptDeps, delivery: ClaimedDelivery): Promise<AttemptReport> {
  const number = delivery.attempt;
  const result = await send(deps, delivery);
  // The budget counts from the start of the current run, so a manual redelivery gets a full schedule.
  // A probe is charged to no budget (finishAttempt opens a new run after it), so it counts as a first attempt.
  const numberInRun = delivery.probe ? 1 : Math.max(1, number - delivery.run_first_attempt + 1);
  // One reading of the clock: the next attempt is scheduled from the moment this one is recorded as
  // finished (two readings could straddle a GC pause and record a backoff shorter than decided).
  const finishedAt = deps.now();
  const outcome = decideOutcome(result, numberInRun, deps.retry, finishedAt, deps.random);
  const recorded = await finishAttempt(deps.pool, delivery, { number, finishedAt: new Date(finishedAt), result, outcome });
  const report: AttemptReport = { number, result, outcome, recorded };
  if (recorded && delivery.endpoint_id !== null) {
    try {
      const attempt = { endpointId: delivery.endpoint_id, leaseToken: delivery.lease_token, verdict: verdictOf(result), nowMs: finishedAt };
      report.health = await recordEndpointAttempt(deps.pool, attempt, deps.breaker);
    } catch (err) {
      report.healthError = err;
    }
  }
  return report;
}

async function send(deps: AttemptDeps, delivery: ClaimedDelivery): Promise<AttemptResult> {
  const channel = deps.channels[delivery.channel];
  if (!channel) return buildFailure(`no adapter for channel "${delivery.channel}"`);
  if ('send' in channel) return channel.send(delivery); // email: its own transport (SMTP)
  let request;
  try {
    // Signed here, per attempt: the signature covers this attempt's timestamp.
    request = channel.build(delivery, Math.floor(deps.now() / 1000));
  } catch (err) {
    return buildFailure(`request could not be built: ${err instanceof Error ? err.message : String(err)}`);
  }
  return deps.deliverer.deliver(request.url, request.headers, request.body);
}

/** Nothing was sent; retrying would fail the same way, so the policy fails it at once. */
function buildFailure(message: string): AttemptResult {
  return { ok: false, statusCode: null, errorCode: 'build_failed', errorMessage: message, responseExcerpt: null, durationMs: 0 };
}
