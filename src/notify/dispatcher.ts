// The dispatcher role: wakes on NOTIFY when an outbox row commits (and on a periodic sweep for due
// retries), claims due deliveries under a lease, sends them through their channel, records each attempt.
import pg from 'pg';
import type { Runtime } from '../runtime.ts';
import { channels } from './channels/index.ts';
import { createDeliverer, type Deliverer } from './deliver.ts';
import { claimDue, recordAttempt, releaseClaims, type ClaimedDelivery } from './outbox.repository.ts';
import { decideOutcome } from './retry-policy.ts';
import { parseAllowedCidrs } from './ssrf.ts';
import type { AttemptResult } from './types.ts';

export interface DispatcherHandle {
  /** resolves when the current sweep has nothing more due (for tests and benchmarks) */
  idle(): Promise<void>;
  stop(): Promise<void>;
}

export interface DispatcherOptions {
  batchSize?: number;
  sweepIntervalMs?: number;
  now?: () => number;
  random?: () => number;
}

const VERSION = '0.1.0';

export async function startDispatcher(
  rt: Pick<Runtime, 'pool' | 'config' | 'logger' | 'databaseUrl'>,
  opts: DispatcherOptions = {},
): Promise<DispatcherHandle> {
  const log = rt.logger.child({ role: 'dispatcher' });
  const cfg = rt.config.webhook;
  const now = opts.now ?? Date.now;
  const batchSize = opts.batchSize ?? 16;
  const leaseMs = cfg.timeoutMs + 30_000;
  const deliverer: Deliverer = createDeliverer({
    timeoutMs: cfg.timeoutMs,
    allowedCidrs: parseAllowedCidrs(cfg.allowedCidrs),
    userAgent: `stream-api/${VERSION}`,
  });

  let stopping = false;
  let running: Promise<void> | null = null;
  let again = false;

  async function sendOne(delivery: ClaimedDelivery): Promise<void> {
    const number = delivery.attempts + 1;
    const startedAt = new Date(now());
    const channel = channels[delivery.channel];
    let result: AttemptResult;
    if (!channel) {
      result = failure(`no adapter for channel "${delivery.channel}"`);
    } else {
      const request = channel.build(delivery, Math.floor(now() / 1000));
      result = await deliverer.deliver(request.url, request.headers, request.body);
    }
    const outcome = decideOutcome(result, number, { maxRetries: cfg.maxRetries, baseMs: cfg.backoffBaseMs, maxMs: cfg.backoffMaxMs }, now(), opts.random);
    await recordAttempt(rt.pool, delivery, { number, startedAt, result, outcome });
    log.info({ deliveryId: delivery.id, attempt: number, status: result.statusCode, error: result.errorCode, outcome: outcome.status }, 'delivery attempt');
  }

  async function drain(): Promise<void> {
    do {
      again = false;
      while (!stopping) {
        const batch = await claimDue(rt.pool, batchSize, leaseMs);
        if (batch.length === 0) break;
        await Promise.all(
          batch.map((d) =>
            sendOne(d).catch(async (err) => {
              log.error({ err, deliveryId: d.id }, 'delivery attempt could not be recorded');
              await releaseClaims(rt.pool, [d.id]).catch(() => {});
            }),
          ),
        );
      }
    } while (again && !stopping);
  }

  function wake(): void {
    if (stopping) return;
    if (running) {
      again = true;
      return;
    }
    running = drain()
      .catch((err) => log.warn({ err }, 'dispatch sweep failed'))
      .finally(() => (running = null));
  }

  // LISTEN on a dedicated connection (a pooled one would lose the subscription when returned).
  let listener: pg.Client | null = null;
  async function listen(): Promise<void> {
    const client = new pg.Client({ connectionString: rt.databaseUrl, application_name: 'stream-api:dispatcher-listen' });
    client.on('notification', wake);
    client.on('error', (err) => {
      log.warn({ err }, 'LISTEN connection lost; reconnecting');
      client.end().catch(() => {});
      if (!stopping) setTimeout(() => listen().catch(() => {}), 1000);
    });
    await client.connect();
    await client.query('LISTEN deliveries_due');
    listener = client;
  }
  await listen();
  const sweep = setInterval(wake, opts.sweepIntervalMs ?? 1000);
  wake();
  log.info({ batchSize, maxRetries: cfg.maxRetries }, 'dispatcher started');

  return {
    async idle() {
      while (running) await running;
    },
    async stop() {
      stopping = true;
      clearInterval(sweep);
      await listener?.end().catch(() => {});
      // In-flight sends finish (each bounded by the webhook timeout) and are recorded.
      while (running) await running;
      await deliverer.close();
    },
  };
}

function failure(message: string): AttemptResult {
  return { ok: false, statusCode: null, errorCode: 'network', errorMessage: message, responseExcerpt: null, durationMs: 0 };
}
