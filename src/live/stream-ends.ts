// Every live stream's end is counted and logged with its reason, so a wave of `key_revoked` or
// `token_expired` closes is visible (stream_api_live_streams_ended_total{transport,reason}).
import { Counter } from 'prom-client';
import type { FastifyBaseLogger } from 'fastify';
import { processRegistry } from '../metrics/registry.ts';
import type { EndReason } from './access.ts';

export type LiveTransport = 'sse' | 'ws' | 'feed';

export const liveStreamsEnded = new Counter({
  name: 'stream_api_live_streams_ended_total',
  help: 'Live streams ended, by transport (sse, ws, feed) and reason (done, shutdown, client_gone, key_revoked, token_expired, not_found)',
  labelNames: ['transport', 'reason'] as const,
  registers: [processRegistry],
});

/** Counts and logs a session's end once it happens; call once the stream is open. */
export function recordStreamEnd(
  session: { whenEnded(fn: () => void): void; readonly endReason: EndReason | null },
  transport: LiveTransport,
  log: FastifyBaseLogger,
): void {
  const startedMs = Date.now();
  session.whenEnded(() => {
    const reason = session.endReason ?? 'client_gone';
    liveStreamsEnded.inc({ transport, reason });
    log.info({ transport, reason, durationMs: Date.now() - startedMs }, 'live stream ended');
  });
}
