// The endpoint-health transitions, with no clock and no database: when the breaker opens and
// closes, how the probe interval grows, what an abort counts as, and when an endpoint is disabled.
import { describe, expect, it } from 'vitest';
import { healthState, nextHealth, probeDelayMs, type EndpointHealth } from '../../src/notify/breaker-policy.ts';

const opts = { threshold: 3, probeBaseMs: 100, probeMaxMs: 1000, disableAfterMs: 3_600_000 };
const T0 = 1_700_000_000_000;
const healthy: EndpointHealth = {
  enabled: true, breakerState: 'closed', consecutiveFailures: 0, failingSince: null, lastSuccessAt: null, probesFailed: 0, nextProbeAt: null,
};

describe('probeDelayMs', () => {
  it('doubles from the base with each failed probe, capped at the maximum', () => {
    expect([0, 1, 2, 3, 4, 60].map((n) => probeDelayMs(n, opts))).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect(() => probeDelayMs(-1, opts)).toThrow(RangeError);
  });
});

describe('nextHealth', () => {
  it('opens at the threshold of consecutive failures, the first probe after the base delay', () => {
    let h = healthy;
    for (let i = 1; i < 3; i += 1) {
      const step = nextHealth(h, 'failure', false, T0 + i, opts);
      expect(step).toMatchObject({ opened: false, closed: false, disable: false });
      h = step.next;
    }
    expect(h).toMatchObject({ breakerState: 'closed', consecutiveFailures: 2, failingSince: new Date(T0 + 1) });
    const third = nextHealth(h, 'failure', false, T0 + 10, opts);
    expect(third.opened).toBe(true);
    expect(third.next).toMatchObject({ breakerState: 'open', consecutiveFailures: 3, nextProbeAt: new Date(T0 + 110), failingSince: new Date(T0 + 1) });
  });

  it('a failed probe pushes the next one twice as far; a late non-probe failure moves no probe clock', () => {
    const open: EndpointHealth = { ...healthy, breakerState: 'open', consecutiveFailures: 3, failingSince: new Date(T0), nextProbeAt: new Date(T0 + 100) };
    const probe1 = nextHealth(open, 'failure', true, T0 + 200, opts).next;
    expect(probe1).toMatchObject({ probesFailed: 1, nextProbeAt: new Date(T0 + 400), consecutiveFailures: 4 });
    const probe2 = nextHealth(probe1, 'failure', true, T0 + 500, opts).next;
    expect(probe2).toMatchObject({ probesFailed: 2, nextProbeAt: new Date(T0 + 900) });
    const late = nextHealth(probe2, 'failure', false, T0 + 600, opts).next;
    expect(late).toMatchObject({ probesFailed: 2, nextProbeAt: new Date(T0 + 900), consecutiveFailures: 6 });
  });

  it('the first success closes an open breaker and clears the streak', () => {
    const open: EndpointHealth = { ...healthy, breakerState: 'open', consecutiveFailures: 7, failingSince: new Date(T0), probesFailed: 3, nextProbeAt: new Date(T0 + 800) };
    const step = nextHealth(open, 'success', true, T0 + 900, opts);
    expect(step).toMatchObject({ closed: true, opened: false });
    expect(step.next).toEqual({ ...healthy, lastSuccessAt: new Date(T0 + 900) });
    expect(nextHealth(healthy, 'success', false, T0, opts).closed).toBe(false);
  });

  it('an abort keeps the streak: the receiver is up but this is no success', () => {
    const failing = { ...healthy, consecutiveFailures: 2, failingSince: new Date(T0) };
    expect(nextHealth(failing, 'aborted', false, T0 + 5, opts)).toEqual({ next: failing, closed: false, opened: false, disable: false });
    const open = { ...failing, breakerState: 'open' as const, probesFailed: 1, nextProbeAt: new Date(T0) };
    expect(nextHealth(open, 'aborted', true, T0 + 5, opts).next).toMatchObject({ breakerState: 'open', probesFailed: 1, nextProbeAt: new Date(T0 + 205) });
  });

  it('disables an enabled endpoint failing for disableAfterMs since its first failure', () => {
    const failing = { ...healthy, breakerState: 'open' as const, consecutiveFailures: 9, failingSince: new Date(T0) };
    expect(nextHealth(failing, 'failure', true, T0 + opts.disableAfterMs - 1, opts).disable).toBe(false);
    const step = nextHealth(failing, 'failure', true, T0 + opts.disableAfterMs, opts);
    expect(step.disable).toBe(true);
    expect(step.next.enabled).toBe(false);
    expect(nextHealth({ ...failing, enabled: false }, 'failure', true, T0 + 2 * opts.disableAfterMs, opts).disable).toBe(false);
  });

  it('the state shown: disabled wins over the breaker', () => {
    expect([healthState(true, 'closed'), healthState(true, 'open'), healthState(false, 'closed'), healthState(false, 'open')])
      .toEqual(['closed', 'open', 'disabled', 'disabled']);
  });
});
