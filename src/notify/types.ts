// Shared, I/O-free types for the notification pieces. Kept apart from deliver.ts so the pure
// modules (retry-policy) can depend on the result shape without importing the HTTP module.

/** Why an attempt failed; null when it succeeded (2xx). */
export type AttemptErrorCode =
  | 'timeout'
  | 'connect_refused'
  | 'dns'
  | 'tls'
  | 'ssrf_blocked'
  | 'reset'
  | 'http_3xx'
  | 'http_4xx'
  | 'http_5xx'
  | 'network'
  /** the channel could not build a request (no adapter, unusable secret): nothing was sent */
  | 'build_failed'
  /**
   * a non-2xx answer carrying `webhook-delivery: abort-message` (Svix's header): the receiver asks
   * us to stop retrying this one message, so the delivery is settled `failed` at once
   */
  | 'aborted'
  /** email: the SMTP server answered a transient (4xx) or permanent (5xx) refusal (RFC 5321 §4.2.1) */
  | 'smtp_4xx'
  | 'smtp_5xx';

/** What one delivery attempt (an HTTP request, or an SMTP transaction for email) produced; enough to record the attempt and decide the next step. */
export interface AttemptResult {
  /** true only for a 2xx response (email: the SMTP server accepted the message). */
  ok: boolean;
  /** HTTP status (email: the SMTP reply code), or null when no response arrived. */
  statusCode: number | null;
  errorCode: AttemptErrorCode | null;
  errorMessage: string | null;
  /** First bytes of the response body (≤ 2 KiB, UTF-8 decoded), or null when there was none. */
  responseExcerpt: string | null;
  durationMs: number;
  /** Raw `Retry-After` response header, when the receiver sent one. */
  retryAfter?: string;
}
