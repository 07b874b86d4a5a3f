// The only module that reads process.env. Everything else receives a frozen Config.
import { isIP } from 'node:net';
import path from 'node:path';
import { parseCidrList, type CidrEntry } from './notify/ssrf.ts';

export type Role = 'all' | 'api' | 'worker' | 'dispatcher';

export interface Config {
  /** null → start an embedded PostgreSQL under dataDir */
  databaseUrl: string | null;
  s3: {
    /** null → start an embedded S3-protocol server under dataDir */
    endpoint: string | null;
    bucket: string;
    region: string;
    accessKeyId: string;
    secretAccessKey: string;
    forcePathStyle: boolean;
    /**
     * the store's endpoint as the clients of direct uploads reach it: presigned part URLs point at it
     * (null → `endpoint`, or the embedded server's)
     */
    publicEndpoint: string | null;
  };
  host: string;
  port: number;
  /** the ops listener (/metrics, /healthz, /readyz) of every role; 0 = any free port */
  metricsPort: number;
  /** the ops listener's address: loopback unless told otherwise, since /metrics has no authentication */
  metricsHost: string;
  publicUrl: string | null;
  maxUploadBytes: number;
  dataDir: string;
  embeddedPgPort: number;
  embeddedS3Port: number;
  logLevel: string;
  /** create (and remember under dataDir) a dev tenant + key at start-up */
  devKey: boolean;
  worker: { concurrency: number; leaseSeconds: number; maxAttempts: number };
  webhook: {
    maxRetries: number;
    backoffBaseMs: number;
    backoffMaxMs: number;
    timeoutMs: number;
    /** attempts in flight at once per dispatcher process */
    concurrency: number;
    /** networks callbacks may reach despite the SSRF rules (parsed here, so a typo stops the start) */
    allowedCidrs: readonly CidrEntry[];
  };
  /** endpoint health (src/notify/breaker.ts): circuit breaker and auto-disable, per endpoint across dispatchers */
  endpoints: {
    /** consecutive failed attempts that open an endpoint's breaker (its deliveries then wait) */
    breakerThreshold: number;
    /** wait before the first probe of an open breaker; each failed probe doubles it */
    probeBaseMs: number;
    /** the longest wait between two probes */
    probeMaxMs: number;
    /** an endpoint failing without a success for this long is disabled (its pending deliveries are kept) */
    disableAfterHours: number;
    /**
     * leased (in-flight) deliveries per endpoint across all dispatchers: a hanging endpoint holds
     * at most this many slots (src/notify/isolation.ts)
     */
    maxInFlight: number;
  };
  /**
   * the email channel (nodemailer over SMTP): null when SMTP_URL is unset, and `email` endpoints are
   * then refused (400 email_not_configured)
   */
  smtp: {
    /** smtp://[user:pass@]host:port (STARTTLS when offered) or smtps://… (TLS from the start) */
    url: string;
    /** the From of every notification mail */
    from: string;
  } | null;
  /** timeouts of the API's HTTP server */
  http: {
    /** a request body (an upload above all) without a byte for this long is cancelled: 408 body_idle_timeout */
    bodyIdleTimeoutMs: number;
    /** the request line and headers must have arrived within this long: 408 request_timeout */
    headersTimeoutMs: number;
    /** an idle keep-alive connection is closed after this long */
    keepAliveTimeoutMs: number;
  };
  /** per-tenant limits of each API instance (src/http/limits.ts): 429 with Retry-After beyond them */
  limits: {
    /** uploads of one tenant being received at once */
    uploadsInFlight: number;
    /** uploads of one tenant started per minute */
    uploadsPerMinute: number;
    /** POST /auth/token of one tenant per minute */
    tokensPerMinute: number;
    /** live streams (SSE and WebSocket) of one tenant open at once */
    liveStreams: number;
  };
  /** how the API streams an upload into storage (src/storage/object-store.ts) */
  uploads: {
    /** bytes per part of the multipart upload into storage (S3: ≥ 5 MiB, ≤ 10,000 parts per object) */
    partSizeBytes: number;
    /** parts of one upload being sent to storage at once */
    partsInFlight: number;
    /** memory (bytes) all uploads of a process share for their parts beyond the first: see PartBudget */
    bufferBytes: number;
  };
  /**
   * Limits on what a gzip upload may expand to, checked while it is decompressed (src/ingest/decompress.ts):
   * beyond either the upload fails with `decompression_limit`.
   */
  gzip: {
    /** uncompressed bytes per stored (compressed) byte read so far; enforced once 1 MiB has been decompressed */
    maxRatio: number;
    /** uncompressed bytes of one upload */
    maxUncompressedBytes: number;
  };
  /** direct-to-storage uploads (POST /uploads/direct) */
  directUploads: {
    /** an upload not completed this long after it was started is aborted; its part URLs expire then too */
    expiryHours: number;
    /** the part size offered (bytes, a whole number of MiB ≥ 5 MiB); larger when the file needs more than 10,000 parts */
    partSizeBytes: number;
  };
  /** resumable uploads (tus 1.0 at /files/) */
  tus: {
    /** an unfinished upload expires this long after its creation (Upload-Expires); the sweep aborts its parts */
    expirySeconds: number;
    /** how often each API process removes expired unfinished uploads */
    sweepIntervalSeconds: number;
  };
  retentionDays: number;
  /** a stored object that no upload references is deleted once older than this; covers an upload in flight */
  orphanGraceHours: number;
}

/** SMTP_URL and SMTP_FROM (default `stream-api@<host of SMTP_URL>`); null when SMTP_URL is unset. */
function smtpSettings(read: Reader): Config['smtp'] {
  const url = read.url('SMTP_URL', ['smtp:', 'smtps:']);
  const from = read.string('SMTP_FROM', '', /^$|^[^\s@<>]+@[^\s@<>]+$|^[^<>]*<[^\s@<>]+@[^\s@<>]+>$/);
  if (url === null) return null;
  let host = 'localhost';
  try {
    host = new URL(url).hostname || host;
  } catch {
    // SMTP_URL's problem is already listed
  }
  return { url, from: from || `stream-api@${host}` };
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Env = Record<string, string | undefined>;

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;
/** S3's most parts in one multipart upload. */
const MAX_PARTS = 10_000;
/** RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens. */
const HOST_NAME = /^(?=.{1,253}$)[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/;

/**
 * Reads every setting from `env` (default: process.env), parsing each into the form its users take
 * (numbers, URLs checked, CIDR lists parsed), so nothing is parsed later where a bad value would
 * surface only at its first use. Throws ConfigError listing every problem at once; the result is
 * deeply frozen.
 */
export function loadConfig(env: Env = process.env): Readonly<Config> {
  const problems: string[] = [];
  const read = new Reader(env, problems);

  const databaseUrl = read.url('DATABASE_URL', ['postgres:', 'postgresql:']);
  const s3Endpoint = read.url('S3_ENDPOINT', ['http:', 'https:']);
  const config: Config = {
    databaseUrl,
    s3: {
      endpoint: s3Endpoint,
      bucket: read.string('S3_BUCKET', 'stream-api', /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/),
      // The AWS SDK's own rule for a region (a host label); it would refuse anything else only at the first request.
      region: read.string('S3_REGION', 'us-east-1', /^(?!-)[a-zA-Z0-9-]{1,63}(?<!-)$/),
      // s3rver's fixed credentials are the defaults so zero-config start works.
      accessKeyId: read.string('S3_ACCESS_KEY_ID', s3Endpoint ? '' : 'S3RVER'),
      secretAccessKey: read.string('S3_SECRET_ACCESS_KEY', s3Endpoint ? '' : 'S3RVER'),
      forcePathStyle: read.bool('S3_FORCE_PATH_STYLE', true),
      publicEndpoint: read.url('S3_PUBLIC_ENDPOINT', ['http:', 'https:']),
    },
    // Loopback unless told otherwise: zero-config mode prints a dev key (the Docker image sets 0.0.0.0).
    host: read.host('HOST', '127.0.0.1'),
    port: read.int('PORT', 3002, 0, 65535),
    metricsPort: read.int('METRICS_PORT', 9464, 0, 65535),
    metricsHost: read.host('METRICS_HOST', '127.0.0.1'),
    publicUrl: read.url('PUBLIC_URL', ['http:', 'https:']),
    maxUploadBytes: read.int('MAX_UPLOAD_BYTES', 10 * GiB, 1, Number.MAX_SAFE_INTEGER),
    dataDir: path.resolve(read.string('DATA_DIR', '.data')),
    embeddedPgPort: read.int('EMBEDDED_PG_PORT', 54329, 1, 65535),
    embeddedS3Port: read.int('EMBEDDED_S3_PORT', 4569, 0, 65535),
    logLevel: read.oneOf('LOG_LEVEL', 'info', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
    devKey: read.bool('DEV_API_KEY', env.NODE_ENV !== 'production'),
    worker: {
      concurrency: read.int('WORKER_CONCURRENCY', 2, 1, 64),
      leaseSeconds: read.int('WORKER_LEASE_SECONDS', 15, 2, 3600),
      maxAttempts: read.int('JOB_MAX_ATTEMPTS', 5, 1, 100),
    },
    webhook: {
      maxRetries: read.int('WEBHOOK_MAX_RETRIES', 3, 0, 50),
      backoffBaseMs: read.int('WEBHOOK_BACKOFF_BASE_MS', 5_000, 1, 86_400_000),
      backoffMaxMs: read.int('WEBHOOK_BACKOFF_MAX_MS', 3_600_000, 1, 7 * 86_400_000),
      timeoutMs: read.int('WEBHOOK_TIMEOUT_MS', 10_000, 100, 600_000),
      concurrency: read.int('WEBHOOK_CONCURRENCY', 32, 1, 1024),
      allowedCidrs: read.parsed('WEBHOOK_ALLOWED_CIDRS', [], parseCidrList),
    },
    endpoints: {
      breakerThreshold: read.int('ENDPOINT_BREAKER_THRESHOLD', 5, 1, 10_000),
      probeBaseMs: read.int('ENDPOINT_PROBE_BASE_MS', 30_000, 10, 86_400_000),
      probeMaxMs: read.int('ENDPOINT_PROBE_MAX_MS', 3_600_000, 10, 7 * 86_400_000),
      // Svix's figure: five days of failing before an endpoint is disabled.
      disableAfterHours: read.int('ENDPOINT_DISABLE_AFTER_HOURS', 120, 1, 24 * 365),
      maxInFlight: read.int('ENDPOINT_MAX_IN_FLIGHT', 10, 1, 1024),
    },
    smtp: smtpSettings(read),
    http: {
      bodyIdleTimeoutMs: read.int('BODY_IDLE_TIMEOUT_MS', 60_000, 100, 3_600_000),
      headersTimeoutMs: read.int('HEADERS_TIMEOUT_MS', 30_000, 100, 600_000),
      keepAliveTimeoutMs: read.int('KEEP_ALIVE_TIMEOUT_MS', 72_000, 100, 3_600_000),
    },
    limits: {
      uploadsInFlight: read.int('LIMIT_UPLOADS_IN_FLIGHT', 20, 1, 100_000),
      uploadsPerMinute: read.int('LIMIT_UPLOADS_PER_MINUTE', 300, 1, 1_000_000),
      tokensPerMinute: read.int('LIMIT_TOKENS_PER_MINUTE', 120, 1, 1_000_000),
      liveStreams: read.int('LIMIT_LIVE_STREAMS', 1000, 1, 1_000_000),
    },
    uploads: {
      // Measured by `npm run bench:upload` (README, Performance): two 5 MiB parts at once make an upload
      // as fast as the SDK's own uploader; more cost memory for no speed against a store on this machine.
      partSizeBytes: read.int('UPLOAD_PART_SIZE_MIB', 5, 5, 5120) * MiB,
      partsInFlight: read.int('UPLOAD_PARTS_IN_FLIGHT', 2, 1, 64),
      bufferBytes: read.int('UPLOAD_BUFFER_MIB', 32, 0, 65_536) * MiB,
    },
    gzip: {
      // Real CSV compresses 3–15:1; a decompression bomb (zeros, one repeated byte) 1000:1.
      maxRatio: read.int('GZIP_MAX_RATIO', 200, 2, 100_000),
      maxUncompressedBytes: read.int('GZIP_MAX_UNCOMPRESSED_BYTES', 100 * GiB, 1, Number.MAX_SAFE_INTEGER),
    },
    directUploads: {
      // At most a week: SigV4 presigned URLs cannot live longer.
      expiryHours: read.int('DIRECT_UPLOAD_EXPIRY_HOURS', 24, 1, 168),
      // S3's part size bounds: 5 MiB to 5 GiB.
      partSizeBytes: read.int('DIRECT_UPLOAD_PART_MIB', 16, 5, 5120) * MiB,
    },
    tus: {
      expirySeconds: read.int('TUS_EXPIRY_SECONDS', 86_400, 1, 30 * 86_400),
      sweepIntervalSeconds: read.int('TUS_SWEEP_INTERVAL_SECONDS', 300, 1, 86_400),
    },
    retentionDays: read.int('RETENTION_DAYS', 7, 1, 3650),
    orphanGraceHours: read.int('ORPHAN_GRACE_HOURS', 24, 1, 8760),
  };

  if (config.s3.endpoint && (!config.s3.accessKeyId || !config.s3.secretAccessKey)) {
    problems.push('S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY are required when S3_ENDPOINT is set');
  }
  if (config.uploads.partSizeBytes * MAX_PARTS < config.maxUploadBytes) {
    problems.push(
      `UPLOAD_PART_SIZE_MIB=${config.uploads.partSizeBytes / MiB}: ${MAX_PARTS.toLocaleString('en-US')} parts hold less than MAX_UPLOAD_BYTES=${config.maxUploadBytes}`,
    );
  }
  if (config.uploads.bufferBytes > 0 && config.uploads.bufferBytes < config.uploads.partSizeBytes) {
    problems.push('UPLOAD_BUFFER_MIB must be 0 (every upload one part at a time) or hold at least one part (UPLOAD_PART_SIZE_MIB)');
  }
  if (config.webhook.backoffMaxMs < config.webhook.backoffBaseMs) {
    problems.push('WEBHOOK_BACKOFF_MAX_MS must be ≥ WEBHOOK_BACKOFF_BASE_MS');
  }
  if (config.endpoints.probeMaxMs < config.endpoints.probeBaseMs) {
    problems.push('ENDPOINT_PROBE_MAX_MS must be ≥ ENDPOINT_PROBE_BASE_MS');
  }
  // The orphan sweep would otherwise delete the `.info` object of a resumable upload still in progress.
  if (config.tus.expirySeconds > config.orphanGraceHours * 3600) {
    problems.push('TUS_EXPIRY_SECONDS must be ≤ ORPHAN_GRACE_HOURS × 3600 (an unfinished upload must expire before its files count as orphans)');
  }
  if (problems.length > 0) {
    throw new ConfigError(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
  }
  return deepFreeze(config);
}

class Reader {
  constructor(
    private readonly env: Env,
    private readonly problems: string[],
  ) {}

  private raw(name: string): string | undefined {
    const value = this.env[name]?.trim();
    return value === '' ? undefined : value;
  }

  string(name: string, fallback: string, pattern?: RegExp): string {
    const value = this.raw(name) ?? fallback;
    if (pattern && !pattern.test(value)) this.problems.push(`${name}=${JSON.stringify(value)} does not match ${pattern}`);
    return value;
  }

  url(name: string, protocols: string[]): string | null {
    const value = this.raw(name);
    if (value === undefined) return null;
    try {
      const url = new URL(value);
      if (!protocols.includes(url.protocol)) {
        this.problems.push(`${name} must be a ${protocols.join(' or ')} URL`);
      }
    } catch {
      this.problems.push(`${name} is not a valid URL`);
    }
    return value;
  }

  int(name: string, fallback: number, min: number, max: number): number {
    const value = this.raw(name);
    if (value === undefined) return fallback;
    const n = Number(value);
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      this.problems.push(`${name}=${JSON.stringify(value)} must be an integer between ${min} and ${max}`);
      return fallback;
    }
    return n;
  }

  bool(name: string, fallback: boolean): boolean {
    const value = this.raw(name)?.toLowerCase();
    if (value === undefined) return fallback;
    if (['1', 'true', 'yes', 'on'].includes(value)) return true;
    if (['0', 'false', 'no', 'off'].includes(value)) return false;
    this.problems.push(`${name}=${JSON.stringify(value)} must be true or false`);
    return fallback;
  }

  /** An address to listen on: an IPv4/IPv6 literal or a host name (a typo would fail only at listen). */
  host(name: string, fallback: string): string {
    const value = this.raw(name);
    if (value === undefined) return fallback;
    if (isIP(value) === 0 && !HOST_NAME.test(value)) {
      this.problems.push(`${name}=${JSON.stringify(value)} must be an IP address or a host name`);
      return fallback;
    }
    return value;
  }

  /** A value with a grammar of its own: `parse` throws an Error whose message says what is wrong. */
  parsed<T>(name: string, fallback: T, parse: (value: string) => T): T {
    const value = this.raw(name);
    if (value === undefined) return fallback;
    try {
      return parse(value);
    } catch (err) {
      this.problems.push(`${name}: ${(err as Error).message}`);
      return fallback;
    }
  }

  oneOf<T extends string>(name: string, fallback: T, values: readonly T[]): T {
    const value = this.raw(name);
    if (value === undefined) return fallback;
    if (!(values as readonly string[]).includes(value)) {
      this.problems.push(`${name} must be one of ${values.join(', ')}`);
      return fallback;
    }
    return value as T;
  }
}

function deepFreeze<T extends object>(value: T): Readonly<T> {
  for (const child of Object.values(value)) {
    if (child && typeof child === 'object') deepFreeze(child);
  }
  return Object.freeze(value);
}

/**
 * Every environment variable loadConfig reads, recorded by running it over an env that notes each
 * lookup — so deployment files can be checked against the code instead of a list that drifts.
 * (Keep reads unconditional: one made only when another variable has some value would be missed.)
 */
export const CONFIG_ENV_NAMES: readonly string[] = recordEnvReads();

function recordEnvReads(): readonly string[] {
  const names = new Set<string>();
  const env = new Proxy<Env>({}, {
    get: (_target, name) => {
      if (typeof name === 'string') names.add(name);
      return undefined;
    },
  });
  try {
    loadConfig(env);
  } catch {
    // A variable that becomes required would throw here, after every read has been recorded.
  }
  return Object.freeze([...names].sort());
}
