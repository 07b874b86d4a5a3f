// The process's own metrics: one registry per process, shared by every role it hosts. Histograms are
// observed where the work happens (the worker's load, the dispatcher's attempt), so each process
// reports what it did itself; Prometheus sums them across processes. Counts that live in Postgres
// are read at scrape time instead (database.ts). Nothing here carries a tenant or upload id: label
// values are a handful of fixed words, so series stay few and /metrics reveals no tenant data.
import { collectDefaultMetrics, Histogram, Registry } from 'prom-client';

export const processRegistry = new Registry();
// process_resident_memory_bytes, CPU, event-loop lag, heap, GC, open handles …
collectDefaultMetrics({ register: processRegistry });

export const loadDuration = new Histogram({
  name: 'stream_api_load_duration_seconds',
  help: 'Time one load attempt took, object store to commit (outcome: completed, or error when it threw)',
  labelNames: ['outcome'] as const,
  // From a few rows to a multi-GB file.
  buckets: [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600],
  registers: [processRegistry],
});

export const deliveryAttemptDuration = new Histogram({
  name: 'stream_api_delivery_attempt_duration_seconds',
  help: 'Time one delivery attempt took, request sent to response read (outcome: sent, retry or failed)',
  labelNames: ['outcome'] as const,
  buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
  registers: [processRegistry],
});

/** Times `load`; the caller's result and error pass through untouched. */
export async function observeLoad<T>(load: () => Promise<T>): Promise<T> {
  const end = loadDuration.startTimer();
  try {
    const result = await load();
    end({ outcome: 'completed' });
    return result;
  } catch (err) {
    end({ outcome: 'error' });
    throw err;
  }
}

const ATTEMPT_OUTCOME = { sent: 'sent', pending: 'retry', failed: 'failed' } as const;

/** Records the attempt's own measured duration (structurally typed: metrics imports nothing of notify/). */
export function observeDeliveryAttempt(report: {
  result: { durationMs: number };
  outcome: { status: keyof typeof ATTEMPT_OUTCOME };
}): void {
  deliveryAttemptDuration.observe({ outcome: ATTEMPT_OUTCOME[report.outcome.status] }, report.result.durationMs / 1000);
}
