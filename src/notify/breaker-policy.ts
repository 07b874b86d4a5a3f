// Pure endpoint-health decisions: what one finished attempt does to its endpoint's circuit breaker
// and failure streak, and when the next probe may go. No clock, no I/O: `nowMs` is passed in, so
// every transition is testable (test/unit/notify-breaker-policy.test.ts).

/** What GET /endpoints shows: `disabled` wins over the breaker's own state. */
export type HealthState = 'closed' | 'open' | 'disabled';
export type BreakerState = 'closed' | 'open';

/**
 * How an attempt counts for its endpoint. `aborted` (the receiver answered and asked us to stop
 * retrying that one message) proves the receiver is up but is no success: it leaves the streak as it is.
 */
export type AttemptVerdict = 'success' | 'failure' | 'aborted';

export interface BreakerOptions {
  /** consecutive failures that open the breaker (≥ 1) */
  threshold: number;
  /** wait before the first probe, ms; doubled by each failed probe */
  probeBaseMs: number;
  /** longest wait between probes, ms */
  probeMaxMs: number;
  /** failing without a success for this long (ms) disables the endpoint */
  disableAfterMs: number;
}

/** The health columns of an endpoint row, as read under its row lock. */
export interface EndpointHealth {
  enabled: boolean;
  breakerState: BreakerState;
  consecutiveFailures: number;
  failingSince: Date | null;
  lastSuccessAt: Date | null;
  probesFailed: number;
  nextProbeAt: Date | null;
}

export interface HealthTransition {
  next: EndpointHealth;
  /** the breaker went open → closed: the deliveries it held are due now */
  closed: boolean;
  /** the breaker went closed → open */
  opened: boolean;
  /** the endpoint failed for disableAfterMs: disable it (deliveries kept) and emit endpoint.disabled */
  disable: boolean;
}

/** Wait before the probe that follows `probesFailed` failed probes: baseMs·2^n, at most maxMs. */
export function probeDelayMs(probesFailed: number, opts: Pick<BreakerOptions, 'probeBaseMs' | 'probeMaxMs'>): number {
  if (!Number.isInteger(probesFailed) || probesFailed < 0) throw new RangeError('probesFailed must be an integer ≥ 0');
  // 2 ** large → Infinity, which Math.min turns back into maxMs.
  return Math.min(opts.probeMaxMs, opts.probeBaseMs * 2 ** probesFailed);
}

export function healthState(enabled: boolean, breakerState: BreakerState): HealthState {
  return enabled ? breakerState : 'disabled';
}

/**
 * The endpoint after one finished attempt. `wasProbe`: it was the probe an open breaker let through.
 * - success: streak reset, last success now; an open breaker closes (the first success does).
 * - failure: streak +1 (and failingSince set by its first failure); a closed breaker opens at
 *   `threshold`, its first probe after probeBaseMs; a failed probe schedules the next one twice as
 *   far; failing for disableAfterMs (an enabled endpoint) disables it.
 * - aborted: the streak is kept; a probe that got one is followed by another after the same wait.
 * A non-probe attempt finishing while the breaker is open (it was in flight when it opened) counts
 * in the streak but schedules nothing: only the probe's outcome moves the probe clock.
 */
export function nextHealth(
  prev: EndpointHealth,
  verdict: AttemptVerdict,
  wasProbe: boolean,
  nowMs: number,
  opts: BreakerOptions,
): HealthTransition {
  const now = new Date(nowMs);
  const after = (ms: number) => new Date(nowMs + ms);
  if (verdict === 'success') {
    const next: EndpointHealth = {
      ...prev, breakerState: 'closed', consecutiveFailures: 0, failingSince: null, lastSuccessAt: now, probesFailed: 0, nextProbeAt: null,
    };
    return { next, closed: prev.breakerState === 'open', opened: false, disable: false };
  }
  if (verdict === 'aborted') {
    const nextProbeAt = wasProbe && prev.breakerState === 'open' ? after(probeDelayMs(prev.probesFailed, opts)) : prev.nextProbeAt;
    return { next: { ...prev, nextProbeAt }, closed: false, opened: false, disable: false };
  }
  const failingSince = prev.failingSince ?? now;
  const next: EndpointHealth = { ...prev, consecutiveFailures: prev.consecutiveFailures + 1, failingSince };
  let opened = false;
  if (prev.breakerState === 'closed' && next.consecutiveFailures >= opts.threshold) {
    opened = true;
    Object.assign(next, { breakerState: 'open', probesFailed: 0, nextProbeAt: after(probeDelayMs(0, opts)) });
  } else if (prev.breakerState === 'open' && wasProbe) {
    next.probesFailed = prev.probesFailed + 1;
    next.nextProbeAt = after(probeDelayMs(next.probesFailed, opts));
  }
  const disable = prev.enabled && nowMs - failingSince.getTime() >= opts.disableAfterMs;
  if (disable) next.enabled = false;
  return { next, closed: false, opened, disable };
}
