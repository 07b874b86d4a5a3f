// Per-tenant limits of the API, so that one tenant (or one leaked key) cannot take an instance's
// sockets, memory or database time from the others. Answered `429` with `Retry-After` and a stable code.
//
// Rates (uploads and tokens per minute) are @fastify/rate-limit's fixed windows in its in-process
// store: each API instance counts on its own, so a tenant's allowance grows with the number of
// instances, as the capacity that pays for it does. Gauges (uploads being received, live streams
// open) are what is held right now, not a rate: a counter per tenant, released when the held thing ends.
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify';
import type { Config } from '../config.ts';
import { AppError, type ErrorCode } from '../errors.ts';

/** What a tenant may hold at once; `tryAcquire` answers a release function, or null at the limit. */
export class TenantGauge {
  private readonly held = new Map<string, number>();

  constructor(readonly limit: number) {}

  /** Takes one unit for `tenantId` unless it holds `limit` already. The release is idempotent. */
  tryAcquire(tenantId: string): (() => void) | null {
    const count = this.held.get(tenantId) ?? 0;
    if (count >= this.limit) return null;
    this.held.set(tenantId, count + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.held.get(tenantId) ?? 1) - 1;
      if (left > 0) this.held.set(tenantId, left);
      else this.held.delete(tenantId);
    };
  }

  /** Units `tenantId` holds now. */
  heldBy(tenantId: string): number {
    return this.held.get(tenantId) ?? 0;
  }
}

/** The limiters routes attach: `preHandler` hooks for the rates, gauges for what is held. */
export interface TenantLimits {
  /** POST /uploads, its alias and POST /uploads/direct share it: one allowance per tenant */
  uploadRate: preHandlerAsyncHookHandler;
  tokenRate: preHandlerAsyncHookHandler;
  uploadsInFlight: TenantGauge;
  liveStreams: TenantGauge;
}

/** Retry-After of a full gauge, seconds: an upload or a stream frees its slot when it ends, which no one can predict. */
export const GAUGE_RETRY_AFTER_SECONDS = { uploads: 10, streams: 30 } as const;

const MINUTE_MS = 60_000;

/**
 * Registers @fastify/rate-limit on `app` (no global limit: only the hooks returned here count) and
 * builds the limiters from `config.limits`. The hooks need `request.tenant`: attach them only to
 * authenticated routes (they run after the authentication hook).
 */
export async function registerTenantLimits(app: FastifyInstance, config: Readonly<Config>): Promise<TenantLimits> {
  await app.register(rateLimit, { global: false });
  const perMinute = (max: number, code: ErrorCode, what: string) =>
    app.rateLimit({
      max,
      timeWindow: MINUTE_MS,
      keyGenerator: (request: FastifyRequest) => request.tenant.id,
      errorResponseBuilder: (_request, context) => {
        const retryAfterSeconds = Math.max(1, Math.ceil(context.ttl / 1000));
        return new AppError(code, `more than ${context.max} ${what} per minute by this tenant; try again in ${retryAfterSeconds} s`, {
          retryAfterSeconds,
        });
      },
    });
  return {
    uploadRate: perMinute(config.limits.uploadsPerMinute, 'upload_rate_limited', 'uploads'),
    tokenRate: perMinute(config.limits.tokensPerMinute, 'token_rate_limited', 'tokens'),
    uploadsInFlight: new TenantGauge(config.limits.uploadsInFlight),
    liveStreams: new TenantGauge(config.limits.liveStreams),
  };
}

/** One unit of `gauge` for the request's tenant, or a 429 with `code`. */
export function acquireOrRefuse(
  gauge: TenantGauge,
  request: FastifyRequest,
  code: 'too_many_uploads_in_flight' | 'too_many_live_streams',
): () => void {
  const release = gauge.tryAcquire(request.tenant.id);
  if (release) return release;
  const what = code === 'too_many_uploads_in_flight' ? 'uploads being received' : 'live streams open';
  const retryAfterSeconds = GAUGE_RETRY_AFTER_SECONDS[code === 'too_many_uploads_in_flight' ? 'uploads' : 'streams'];
  throw new AppError(code, `this tenant has ${gauge.limit} ${what} already (the limit); try again when one has ended`, {
    retryAfterSeconds,
  });
}
