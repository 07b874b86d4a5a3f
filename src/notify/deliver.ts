// The one module that sends webhook HTTP requests. Everything a hostile or broken receiver could do
// to the sender is bounded here: where we connect (SSRF rules, checked on the address actually
// connected to), how long we wait (timeoutMs for the whole attempt), and how much we read.
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { isIP } from 'node:net';
import { performance } from 'node:perf_hooks';
import { Agent, buildConnector } from 'undici';
import { checkUrl, isForbiddenAddress, type AddressList } from './ssrf.ts';
import type { AttemptErrorCode, AttemptResult } from './types.ts';

export type { AttemptErrorCode, AttemptResult } from './types.ts';

export interface DeliverOptions {
  /** Budget for the whole attempt: connect + send + response headers + reading the body. */
  timeoutMs: number;
  /** Stop reading the response after this many bytes (default 64 KiB). */
  maxResponseBytes?: number;
  /** From parseAllowedCidrs; these addresses are reachable despite the SSRF rules. */
  allowedCidrs?: AddressList;
  userAgent: string;
}

export interface Deliverer {
  deliver(url: string, headers: Record<string, string>, body: string): Promise<AttemptResult>;
  close(): Promise<void>;
}

export const DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024;
/** Svix's response header (and value) by which a receiver stops the retries of one message. */
export const ABORT_HEADER = 'webhook-delivery';
export const ABORT_VALUE = 'abort-message';
export const EXCERPT_BYTES = 2 * 1024;

/** Raised from inside the connector, so undici hands it back to us as the request's failure. */
export class SsrfBlockedError extends Error {
  readonly code = 'ERR_SSRF_BLOCKED';
  constructor(message: string) {
    super(message);
    this.name = 'SsrfBlockedError';
  }
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * A `lookup` for net.connect that drops forbidden addresses from the DNS answer, so the socket can
 * only ever connect to a vetted address (a rebinding DNS server cannot swap one in after a check).
 * Forbidden entries are filtered rather than failing the whole name, so a dual-stack host with one
 * odd record still works; if nothing is left, the connection fails with SsrfBlockedError.
 */
function guardedLookup(allowed: AddressList | undefined) {
  return (hostname: string, options: LookupOptions, callback: LookupCallback): void => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, []);
      const safe = addresses.filter((a) => !isForbiddenAddress(a.address, allowed));
      const first = safe[0];
      if (first === undefined) {
        const seen = addresses.map((a) => a.address).join(', ');
        return callback(new SsrfBlockedError(`${hostname} resolves only to forbidden addresses (${seen})`), []);
      }
      // net.connect asks for `all` when it races IPv4/IPv6 (autoSelectFamily), a single address otherwise.
      if (options.all) callback(null, safe);
      else callback(null, first.address, first.family);
    });
  };
}

/**
 * net.connect skips `lookup` entirely when the host is an IP literal, so literal addresses are
 * judged here, in the connector — the last point before any packet leaves.
 */
function guardedConnector(allowed: AddressList | undefined, connectTimeoutMs: number): buildConnector.connector {
  const connect = buildConnector({ timeout: connectTimeoutMs, lookup: guardedLookup(allowed) });
  return (options, callback) => {
    const host = options.hostname.startsWith('[') ? options.hostname.slice(1, -1) : options.hostname;
    if (isIP(host) !== 0 && isForbiddenAddress(host, allowed)) {
      callback(new SsrfBlockedError(`connection to forbidden address ${host} refused`), null);
      return;
    }
    connect(options, callback);
  };
}

const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT']);
const DNS_CODES = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EAI_NODATA', 'EAI_NONAME']);
const RESET_CODES = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED']);
const TLS_CODE = /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_|HOSTNAME_MISMATCH|ERR_OSSL_)/;

/** The error and the errors it wraps (cause chains, AggregateError from happy-eyeballs connects). */
function errorChain(err: unknown): { name?: string; code?: string; message?: string }[] {
  const out: { name?: string; code?: string; message?: string }[] = [];
  const queue: unknown[] = [err];
  while (queue.length > 0 && out.length < 10) {
    const e = queue.shift();
    if (typeof e !== 'object' || e === null) continue;
    const rec = e as { name?: unknown; code?: unknown; message?: unknown; cause?: unknown; errors?: unknown };
    out.push({
      name: typeof rec.name === 'string' ? rec.name : undefined,
      code: typeof rec.code === 'string' ? rec.code : undefined,
      message: typeof rec.message === 'string' ? rec.message : undefined,
    });
    if (rec.cause !== undefined) queue.push(rec.cause);
    if (Array.isArray(rec.errors)) queue.push(...rec.errors);
  }
  return out;
}

function classifyError(err: unknown, timedOut: boolean): AttemptErrorCode {
  const chain = errorChain(err);
  const has = (test: (code: string, name: string) => boolean) =>
    chain.some((e) => test(e.code ?? '', e.name ?? ''));
  if (has((code) => code === 'ERR_SSRF_BLOCKED')) return 'ssrf_blocked';
  if (timedOut || has((code, name) => TIMEOUT_CODES.has(code) || name === 'TimeoutError')) return 'timeout';
  if (has((code) => code === 'ECONNREFUSED')) return 'connect_refused';
  if (has((code) => DNS_CODES.has(code))) return 'dns';
  if (has((code) => TLS_CODE.test(code))) return 'tls';
  if (has((code) => RESET_CODES.has(code))) return 'reset';
  return 'network';
}

function describeError(err: unknown): string {
  const parts = errorChain(err).map((e) => [e.code, e.message].filter(Boolean).join(': ')).filter(Boolean);
  return (parts.join(' <- ') || String(err)).slice(0, 500);
}

/** UTF-8 text for the attempt record: no NULs (Postgres text rejects them), at most EXCERPT_BYTES. */
function toExcerpt(bytes: Buffer): string | null {
  if (bytes.length === 0) return null;
  // stream: true holds back a multi-byte character cut in half by the cap instead of mangling it.
  let text = new TextDecoder('utf-8').decode(bytes, { stream: true }).replace(/\u0000/g, '\uFFFD');
  while (Buffer.byteLength(text, 'utf8') > EXCERPT_BYTES) text = text.slice(0, -1);
  return text;
}

function statusErrorCode(status: number): AttemptErrorCode | null {
  if (status >= 200 && status <= 299) return null;
  if (status >= 300 && status <= 399) return 'http_3xx';
  if (status >= 400 && status <= 499) return 'http_4xx';
  return 'http_5xx';
}

function firstHeader(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

export function createDeliverer(opts: DeliverOptions): Deliverer {
  if (!(Number.isFinite(opts.timeoutMs) && opts.timeoutMs > 0)) throw new RangeError('timeoutMs must be positive');
  const maxResponseBytes = opts.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
  const allowed = opts.allowedCidrs;
  const agent = new Agent({
    connect: guardedConnector(allowed, opts.timeoutMs),
    headersTimeout: opts.timeoutMs,
    bodyTimeout: opts.timeoutMs,
  });

  async function deliver(rawUrl: string, headers: Record<string, string>, body: string): Promise<AttemptResult> {
    const started = performance.now();
    const elapsed = () => Math.round(performance.now() - started);
    const failure = (errorCode: AttemptErrorCode, errorMessage: string, statusCode: number | null = null,
      responseExcerpt: string | null = null): AttemptResult =>
      ({ ok: false, statusCode, errorCode, errorMessage, responseExcerpt, durationMs: elapsed() });

    // Same rules as at upload time. Refusals are policy, not transient, hence ssrf_blocked (never retried).
    const checked = checkUrl(rawUrl, allowed);
    if (!checked.ok) return failure('ssrf_blocked', `URL refused: ${checked.reason}`);
    const url = checked.url;

    const requestHeaders: Record<string, string> = {};
    for (const [name, value] of Object.entries(headers)) {
      if (name.toLowerCase() !== 'user-agent') requestHeaders[name] = value;
    }
    requestHeaders['user-agent'] = opts.userAgent;

    // One deadline for everything; undici's own timeouts only bound the individual phases.
    const signal = AbortSignal.timeout(opts.timeoutMs);
    let statusCode: number | null = null;
    const kept: Buffer[] = [];
    let keptBytes = 0;
    try {
      const res = await agent.request({
        origin: url.origin,
        path: `${url.pathname}${url.search}`,
        method: 'POST',
        headers: requestHeaders,
        body,
        signal,
      });
      statusCode = res.statusCode;
      let readBytes = 0;
      // Streaming cap: keep the first EXCERPT_BYTES, stop after maxResponseBytes. Leaving the loop
      // destroys the body, so a 10 MB or endless response costs at most maxResponseBytes of reading.
      for await (const chunk of res.body as AsyncIterable<Buffer>) {
        if (keptBytes < EXCERPT_BYTES) {
          const part = chunk.subarray(0, EXCERPT_BYTES - keptBytes);
          kept.push(part);
          keptBytes += part.length;
        }
        readBytes += chunk.length;
        if (readBytes >= maxResponseBytes) break;
      }
      const excerpt = toExcerpt(Buffer.concat(kept));
      let errorCode = statusErrorCode(res.statusCode);
      const retryAfter = firstHeader(res.headers['retry-after']);
      let errorMessage: string | null = null;
      // Honoured on a failure only: a 2xx delivered the message, whatever else it says.
      if (errorCode !== null && firstHeader(res.headers[ABORT_HEADER])?.trim().toLowerCase() === ABORT_VALUE) {
        errorCode = 'aborted';
        errorMessage = `HTTP ${res.statusCode} with ${ABORT_HEADER}: ${ABORT_VALUE}: the receiver stopped the retries of this message`;
      } else if (errorCode === 'http_3xx') {
        const location = firstHeader(res.headers['location']) ?? '(none)';
        errorMessage = `HTTP ${res.statusCode}: redirect to ${location.slice(0, 300)} not followed`;
      } else if (errorCode !== null) {
        errorMessage = `HTTP ${res.statusCode}`;
      }
      return {
        ok: errorCode === null,
        statusCode: res.statusCode,
        errorCode,
        errorMessage,
        responseExcerpt: excerpt,
        durationMs: elapsed(),
        ...(retryAfter !== undefined ? { retryAfter } : {}),
      };
    } catch (err) {
      // A failure after the status arrived (e.g. body never finished) keeps the status for the record;
      // the errorCode says why the attempt still did not count.
      const code = classifyError(err, signal.aborted);
      const message = code === 'timeout' ? `timed out after ${opts.timeoutMs} ms` : describeError(err);
      return failure(code, message, statusCode, toExcerpt(Buffer.concat(kept)));
    }
  }

  return {
    deliver,
    // In-flight attempts are bounded by timeoutMs, so a graceful close finishes within that.
    close: () => agent.close(),
  };
}
