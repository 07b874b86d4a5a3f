// LISTEN on a dedicated connection that reconnects by itself. A pooled connection would lose its
// subscription when returned to the pool; a dropped one would silently stop the wake-ups.
import pg from 'pg';
import type { Logger } from '../logger.ts';

export interface Listener {
  close(): Promise<void>;
}

export interface ListenOptions {
  databaseUrl: string;
  channel: string;
  /** called on every notification, and after every (re)connect: anything sent while down was missed */
  onWake: () => void;
  log: Logger;
  applicationName?: string;
}

const RECONNECT_MIN_MS = 250;
const RECONNECT_MAX_MS = 10_000;

/** Connects before resolving, so a wrong URL fails start-up instead of retrying forever. */
export async function listen(opts: ListenOptions): Promise<Listener> {
  if (!/^[a-z_][a-z0-9_]*$/.test(opts.channel)) throw new Error(`invalid channel name ${opts.channel}`);
  let closed = false;
  let client: pg.Client | null = null;
  let retryTimer: NodeJS.Timeout | null = null;
  let delayMs = RECONNECT_MIN_MS;

  async function connect(): Promise<void> {
    const c = new pg.Client({
      connectionString: opts.databaseUrl,
      application_name: opts.applicationName ?? 'stream-api:listen',
    });
    let lost = false;
    const onLost = (err?: Error) => {
      if (lost) return;
      lost = true;
      c.end().catch(() => {});
      if (client === c) client = null;
      if (closed) return;
      opts.log.warn({ err }, `LISTEN ${opts.channel} connection lost; reconnecting`);
      scheduleReconnect();
    };
    c.on('notification', () => opts.onWake());
    c.on('error', onLost);
    c.on('end', () => onLost());
    try {
      await c.connect();
      await c.query(`LISTEN ${opts.channel}`);
    } catch (err) {
      lost = true; // the caller retries; this half-open client must not schedule a retry too
      await c.end().catch(() => {});
      throw err;
    }
    if (closed) {
      await c.end().catch(() => {});
      return;
    }
    client = c;
    delayMs = RECONNECT_MIN_MS;
    opts.onWake();
  }

  function scheduleReconnect(): void {
    if (closed || retryTimer) return;
    retryTimer = setTimeout(() => {
      retryTimer = null;
      connect().catch((err: unknown) => {
        opts.log.warn({ err }, `LISTEN ${opts.channel} reconnect failed`);
        delayMs = Math.min(RECONNECT_MAX_MS, delayMs * 2);
        scheduleReconnect();
      });
    }, delayMs);
  }

  await connect();
  return {
    async close() {
      closed = true;
      if (retryTimer) clearTimeout(retryTimer);
      const c = client;
      client = null;
      await c?.end().catch(() => {});
    },
  };
}
