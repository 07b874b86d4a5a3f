// Pure retry decisions for webhook deliveries: no clock, no randomness, no I/O of its own —
// `now` and `random` are injected so every branch is testable.
import type { AttemptResult } from './types.ts';

export interface BackoffOptions {
  baseMs: number;
  maxMs: number;
}

export interface RetryOptions extends BackoffOptions {
  /** Retries after the first attempt; maxRetries = 3 means at most 4 attempts in total. */
  maxRetries: number;
}

export type Outcome =
  | { status: 'sent' }
  | { status: 'failed' }
  | { status: 'pending'; nextAttemptAt: Date };

/** Network-level failures worth another try: the receiver may simply be down or slow right now. */
const RETRYABLE_ERRORS: ReadonlySet<string> = new Set([
  'timeout',
  'connect_refused',
  'dns',
  'tls',
  'reset',
  'network',
  // SMTP 4xx: "transient negative completion" (RFC 5321 §4.2.1), e.g. 421 service not available, 452 mailbox full
  'smtp_4xx',
]);

/** Statuses whose Retry-After header we obey (RFC 9110 defines it for 503 and 3xx; 429 by RFC 6585). */
const RETRY_AFTER_STATUSES: ReadonlySet<number> = new Set([429, 503]);

function assertBackoffOptions({ baseMs, maxMs }: BackoffOptions): void {
  if (!(Number.isFinite(baseMs) && baseMs > 0)) throw new RangeError('baseMs must be a positive number');
  if (!(Number.isFinite(maxMs) && maxMs >= baseMs)) throw new RangeError('maxMs must be a number ≥ baseMs');
}

/**
 * Exponential backoff with full jitter: uniform in [0, min(maxMs, baseMs·2^(n-1))).
 * Full jitter spreads a burst of failures (one receiver down, many jobs) evenly over the window.
 * Floor: a quarter of min(baseMs, 1 s), so an unlucky draw near 0 never turns into an immediate
 * retry storm, while small test configurations (baseMs = 10) keep their small delays.
 */
export function backoffDelayMs(
  retryNumber: number,
  opts: BackoffOptions,
  random: () => number = Math.random,
): number {
  if (!Number.isInteger(retryNumber) || retryNumber < 1) {
    throw new RangeError('retryNumber must be an integer ≥ 1');
  }
  assertBackoffOptions(opts);
  // 2 ** large → Infinity, which Math.min turns back into maxMs: no overflow handling needed.
  const ceiling = Math.min(opts.maxMs, opts.baseMs * 2 ** (retryNumber - 1));
  const floor = Math.min(opts.baseMs, 1000) / 4;
  const r = Math.min(Math.max(random(), 0), 1);
  return Math.round(Math.max(floor, r * ceiling));
}

const DELTA_SECONDS = /^\d+$/;
// Any HTTP-date form (IMF-fixdate, RFC 850, asctime) contains a month or weekday name. Requiring
// a letter keeps Date.parse's lenient guessing (e.g. "12.5") from being read as a date.
const HAS_LETTER = /[A-Za-z]/;
// asctime ("Sun Nov  6 08:49:37 1994") carries no zone but means GMT; Date.parse would read local time.
const ASCTIME = /^[A-Za-z]{3} [A-Za-z]{3} [ \d]\d \d{2}:\d{2}:\d{2} \d{4}$/;

/**
 * `Retry-After` as milliseconds from `nowMs`: delta-seconds ("120") or an HTTP-date.
 * Returns undefined when absent or unparseable; a date in the past yields 0.
 */
export function parseRetryAfter(header: string | undefined, nowMs: number): number | undefined {
  if (header === undefined) return undefined;
  const value = header.trim();
  if (value === '') return undefined;
  if (DELTA_SECONDS.test(value)) return Number(value) * 1000;
  if (!HAS_LETTER.test(value)) return undefined;
  const at = Date.parse(ASCTIME.test(value) ? `${value} GMT` : value);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - nowMs);
}

/**
 * Network-level error codes win over the status: a 2xx whose body then timed out still counts as a
 * failed attempt (receivers de-duplicate on webhook-id, so retrying it is safe).
 */
function isRetryable(result: AttemptResult): boolean {
  if (result.errorCode !== null && RETRYABLE_ERRORS.has(result.errorCode)) return true;
  const status = result.statusCode;
  // SMTP 5xx: "permanent negative completion" — unlike an HTTP 5xx, the same mail would be refused again.
  if (result.errorCode === 'ssrf_blocked' || result.errorCode === 'smtp_5xx' || status === null) return false;
  return status === 408 || status === 429 || (status >= 500 && status <= 599);
}

/**
 * What to do after attempt number `attemptNumber` (1-based) produced `result`.
 * - 2xx → sent.
 * - 408, 429, 5xx, timeouts and network errors → pending, until the retry budget is spent → failed.
 * - 3xx (redirects are never followed), 410 Gone and every other 4xx, `ssrf_blocked` → failed at once:
 *   retrying cannot change the answer.
 * - `aborted` (any failure answered with `webhook-delivery: abort-message`) → failed at once.
 * - email (SMTP, RFC 5321): a 4xx reply (`smtp_4xx`) → pending like a network error; a 5xx reply
 *   (`smtp_5xx`) → failed at once. `statusCode` then holds the SMTP reply code, not an HTTP status.
 * A Retry-After on 429/503 sets the minimum wait, clamped to maxMs so a receiver cannot park a
 * delivery for days; the jittered backoff still applies if it is longer.
 */
export function decideOutcome(
  result: AttemptResult,
  attemptNumber: number,
  opts: RetryOptions,
  nowMs: number,
  random: () => number = Math.random,
): Outcome {
  if (!Number.isInteger(attemptNumber) || attemptNumber < 1) {
    throw new RangeError('attemptNumber must be an integer ≥ 1');
  }
  if (!Number.isInteger(opts.maxRetries) || opts.maxRetries < 0) {
    throw new RangeError('maxRetries must be an integer ≥ 0');
  }
  if (result.ok) return { status: 'sent' };
  if (result.errorCode === 'aborted') return { status: 'failed' }; // the receiver said so (webhook-delivery: abort-message)
  if (!isRetryable(result) || attemptNumber > opts.maxRetries) return { status: 'failed' };

  let delayMs = backoffDelayMs(attemptNumber, opts, random);
  const status = result.statusCode;
  if (status !== null && RETRY_AFTER_STATUSES.has(status)) {
    const retryAfterMs = parseRetryAfter(result.retryAfter, nowMs);
    if (retryAfterMs !== undefined) delayMs = Math.max(delayMs, Math.min(retryAfterMs, opts.maxMs));
  }
  return { status: 'pending', nextAttemptAt: new Date(nowMs + delayMs) };
}
