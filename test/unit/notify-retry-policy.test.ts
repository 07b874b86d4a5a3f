import { describe, expect, it } from 'vitest';
import { backoffDelayMs, decideOutcome, parseRetryAfter } from '../../src/notify/retry-policy.ts';
import type { AttemptResult } from '../../src/notify/types.ts';

const NOW = Date.parse('2025-03-01T12:00:00Z');
const OPTS = { maxRetries: 3, baseMs: 5_000, maxMs: 3_600_000 };
const fixed = (value: number) => () => value;

function http(statusCode: number, retryAfter?: string): AttemptResult {
  const ok = statusCode >= 200 && statusCode <= 299;
  const errorCode = ok ? null : statusCode < 400 ? 'http_3xx' : statusCode < 500 ? 'http_4xx' : 'http_5xx';
  return {
    ok, statusCode, errorCode, errorMessage: ok ? null : `HTTP ${statusCode}`, responseExcerpt: null, durationMs: 12,
    ...(retryAfter !== undefined ? { retryAfter } : {}),
  };
}

function neterr(errorCode: AttemptResult['errorCode']): AttemptResult {
  return { ok: false, statusCode: null, errorCode, errorMessage: 'boom', responseExcerpt: null, durationMs: 3 };
}

const delayOf = (outcome: ReturnType<typeof decideOutcome>): number => {
  if (outcome.status !== 'pending') throw new Error(`expected pending, got ${outcome.status}`);
  return outcome.nextAttemptAt.getTime() - NOW;
};

describe('backoffDelayMs', () => {
  const opts = { baseMs: 1_000, maxMs: 60_000 };

  it('grows exponentially: with random → 1 the ceiling is base·2^(n-1)', () => {
    expect([1, 2, 3, 4, 5].map((n) => backoffDelayMs(n, opts, fixed(1)))).toEqual([1_000, 2_000, 4_000, 8_000, 16_000]);
  });

  it('is full jitter: random scales the whole window', () => {
    expect(backoffDelayMs(4, opts, fixed(0.5))).toBe(4_000);
    expect(backoffDelayMs(4, opts, fixed(0.1))).toBe(800);
  });

  it('is capped at maxMs, also for huge retry numbers (no overflow)', () => {
    expect(backoffDelayMs(7, opts, fixed(1))).toBe(60_000);
    expect(backoffDelayMs(5_000, opts, fixed(1))).toBe(60_000);
    expect(backoffDelayMs(5_000, opts, fixed(0.5))).toBe(30_000);
  });

  it('never goes below the floor of min(baseMs, 1 s) / 4', () => {
    expect(backoffDelayMs(1, opts, fixed(0))).toBe(250);
    expect(backoffDelayMs(3, { baseMs: 30_000, maxMs: 600_000 }, fixed(0))).toBe(250);
    expect(backoffDelayMs(1, { baseMs: 10, maxMs: 100 }, fixed(0))).toBe(3); // 2.5 rounded: tests stay fast
  });

  it('stays inside [floor, ceiling] for real randomness', () => {
    for (let i = 0; i < 200; i++) {
      const d = backoffDelayMs(3, opts);
      expect(d).toBeGreaterThanOrEqual(250);
      expect(d).toBeLessThanOrEqual(4_000);
    }
  });

  it('rejects nonsense arguments', () => {
    expect(() => backoffDelayMs(0, opts)).toThrow(RangeError);
    expect(() => backoffDelayMs(1.5, opts)).toThrow(RangeError);
    expect(() => backoffDelayMs(1, { baseMs: 0, maxMs: 10 })).toThrow(RangeError);
    expect(() => backoffDelayMs(1, { baseMs: 100, maxMs: 10 })).toThrow(RangeError);
  });
});

describe('parseRetryAfter', () => {
  it('reads delta-seconds', () => {
    expect(parseRetryAfter('120', NOW)).toBe(120_000);
    expect(parseRetryAfter(' 0 ', NOW)).toBe(0);
  });

  it('reads an HTTP-date (IMF-fixdate, RFC 850, asctime) relative to now', () => {
    expect(parseRetryAfter('Sat, 01 Mar 2025 12:01:30 GMT', NOW)).toBe(90_000);
    expect(parseRetryAfter('Saturday, 01-Mar-25 12:01:30 GMT', NOW)).toBe(90_000);
    expect(parseRetryAfter('Sat Mar  1 12:01:30 2025', NOW)).toBe(90_000); // asctime means GMT, whatever TZ
  });

  it('turns a date in the past into 0', () => {
    expect(parseRetryAfter('Sat, 01 Mar 2025 11:00:00 GMT', NOW)).toBe(0);
  });

  it('returns undefined when absent or unparseable', () => {
    for (const bad of [undefined, '', '   ', '-5', '1.5', '12.5', 'soon', '10 seconds', 'Sat, 99 Foo 2025']) {
      expect(parseRetryAfter(bad, NOW), String(bad)).toBeUndefined();
    }
  });
});

describe('decideOutcome', () => {
  it('2xx → sent', () => {
    expect(decideOutcome(http(200), 1, OPTS, NOW)).toEqual({ status: 'sent' });
    expect(decideOutcome(http(204), 4, OPTS, NOW)).toEqual({ status: 'sent' });
  });

  it.each([500, 502, 503, 504, 599, 408, 429])('HTTP %i → pending with backoff', (status) => {
    const outcome = decideOutcome(http(status), 1, OPTS, NOW, fixed(1));
    expect(delayOf(outcome)).toBe(5_000);
  });

  it.each(['timeout', 'connect_refused', 'dns', 'tls', 'reset', 'network'] as const)('%s → pending', (code) => {
    expect(decideOutcome(neterr(code), 2, OPTS, NOW, fixed(1)).status).toBe('pending');
    expect(delayOf(decideOutcome(neterr(code), 2, OPTS, NOW, fixed(1)))).toBe(10_000);
  });

  it.each([400, 401, 403, 404, 405, 409, 410, 413, 422])('HTTP %i → failed at once', (status) => {
    expect(decideOutcome(http(status), 1, OPTS, NOW)).toEqual({ status: 'failed' });
  });

  it.each([301, 302, 303, 307, 308])('HTTP %i (redirect not followed) → failed at once', (status) => {
    expect(decideOutcome(http(status), 1, OPTS, NOW)).toEqual({ status: 'failed' });
  });

  it('ssrf_blocked → failed at once', () => {
    expect(decideOutcome(neterr('ssrf_blocked'), 1, OPTS, NOW)).toEqual({ status: 'failed' });
  });

  it('a 2xx whose body then timed out is retried, not counted as sent', () => {
    const result: AttemptResult = { ...http(200), ok: false, errorCode: 'timeout', errorMessage: 'timed out' };
    expect(decideOutcome(result, 1, OPTS, NOW).status).toBe('pending');
  });

  it('maxRetries = 3 means 4 attempts: attempts 1–3 retry, attempt 4 fails', () => {
    const statuses = [1, 2, 3, 4, 5].map((n) => decideOutcome(http(500), n, OPTS, NOW).status);
    expect(statuses).toEqual(['pending', 'pending', 'pending', 'failed', 'failed']);
    expect(decideOutcome(http(500), 1, { ...OPTS, maxRetries: 0 }, NOW).status).toBe('failed');
  });

  it('backoff grows with the attempt number', () => {
    const delays = [1, 2, 3].map((n) => delayOf(decideOutcome(neterr('timeout'), n, OPTS, NOW, fixed(1))));
    expect(delays).toEqual([5_000, 10_000, 20_000]);
  });

  it('honours Retry-After on 429 and 503 when longer than the backoff', () => {
    expect(delayOf(decideOutcome(http(429, '120'), 1, OPTS, NOW, fixed(1)))).toBe(120_000);
    expect(delayOf(decideOutcome(http(503, 'Sat, 01 Mar 2025 12:10:00 GMT'), 1, OPTS, NOW, fixed(1)))).toBe(600_000);
  });

  it('keeps the backoff when Retry-After is shorter (Retry-After: 0 cannot cause a hot loop)', () => {
    expect(delayOf(decideOutcome(http(429, '0'), 3, OPTS, NOW, fixed(1)))).toBe(20_000);
  });

  it('clamps Retry-After to maxMs', () => {
    expect(delayOf(decideOutcome(http(503, '999999'), 1, OPTS, NOW, fixed(0.5)))).toBe(3_600_000);
  });

  it('ignores Retry-After on other statuses and when unparseable', () => {
    expect(delayOf(decideOutcome(http(500, '120'), 1, OPTS, NOW, fixed(1)))).toBe(5_000);
    expect(delayOf(decideOutcome(http(429, 'later'), 1, OPTS, NOW, fixed(1)))).toBe(5_000);
  });

  it('does not retry when Retry-After comes with a non-retryable status or the budget is spent', () => {
    expect(decideOutcome(http(410, '10'), 1, OPTS, NOW)).toEqual({ status: 'failed' });
    expect(decideOutcome(http(429, '10'), 4, OPTS, NOW)).toEqual({ status: 'failed' });
  });

  it('rejects nonsense arguments', () => {
    expect(() => decideOutcome(http(500), 0, OPTS, NOW)).toThrow(RangeError);
    expect(() => decideOutcome(http(500), 1, { ...OPTS, maxRetries: -1 }, NOW)).toThrow(RangeError);
  });
});

describe('decideOutcome for email (SMTP replies, RFC 5321 §4.2.1)', () => {
  const smtp = (code: number): AttemptResult => ({
    ok: false, statusCode: code, errorCode: code >= 500 ? 'smtp_5xx' : 'smtp_4xx', errorMessage: `${code} refused`, responseExcerpt: null, durationMs: 5,
  });

  it('a 4xx reply is transient: retried until the budget is spent', () => {
    expect(decideOutcome(smtp(451), 1, OPTS, NOW, fixed(1)).status).toBe('pending');
    expect(decideOutcome(smtp(421), 3, OPTS, NOW, fixed(1)).status).toBe('pending');
    expect(decideOutcome(smtp(452), 4, OPTS, NOW, fixed(1)).status).toBe('failed');
  });

  it('a 5xx reply is permanent: failed at once (an HTTP 5xx would be retried)', () => {
    expect(decideOutcome(smtp(550), 1, OPTS, NOW, fixed(1)).status).toBe('failed');
    expect(decideOutcome(smtp(503), 1, OPTS, NOW, fixed(1)).status).toBe('failed');
    expect(decideOutcome(http(503), 1, OPTS, NOW, fixed(1)).status).toBe('pending');
  });
});
