// A dedicated LISTEN connection that reconnects with backoff when lost (the live hub's feed, the
// dispatcher's wake-ups). Not a pooled client: a pooled connection would lose its subscription when
// returned to the pool.
import pg from 'pg';
import type { Logger } from '../logger.ts';

export interface ListenConnection {
  /** A cheap round trip: detects a connection that died silently (it then reconnects by itself). */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface ListenConnectionOptions {
  client: pg.ClientConfig;
  channel: string;
  onNotification: (payload: string | undefined) => void;
  /** After a reconnect (not the first connect): whatever was sent during `outageMs` was missed. */
  onReconnect: (outageMs: number) => void;
  log: Logger;
}

const RECONNECT_MIN_MS = 250;
const RECONNECT_MAX_MS = 10_000;
const PING_TIMEOUT_MS = 10_000;

/** Connects before resolving, so a wrong URL fails the first subscriber instead of retrying forever. */
export async function openListenConnection(opts: ListenConnectionOptions): Promise<ListenConnection> {
  if (!/^[a-z_][a-z0-9_]*$/.test(opts.channel)) throw new Error(`invalid channel name ${opts.channel}`);
  let closed = false;
  let client: pg.Client | null = null;
  let retryTimer: NodeJS.Timeout | null = null;
  let delayMs = RECONNECT_MIN_MS;
  let lostAt: number | null = null;

  async function connect(): Promise<void> {
    const c = new pg.Client({ ...opts.client, keepAlive: true, keepAliveInitialDelayMillis: 10_000 });
    let lost = false;
    const onLost = (err?: Error) => {
      if (lost) return;
      lost = true;
      c.end().catch(() => {});
      if (client !== c) return;
      client = null;
      if (closed) return;
      lostAt = Date.now();
      opts.log.warn({ err }, `LISTEN ${opts.channel} connection lost; reconnecting`);
      scheduleReconnect();
    };
    c.on('notification', (msg) => {
      if (msg.channel === opts.channel) opts.onNotification(msg.payload);
    });
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
    if (lostAt !== null) {
      const outageMs = Date.now() - lostAt;
      lostAt = null;
      opts.log.info({ outageMs }, `LISTEN ${opts.channel} reconnected`);
      opts.onReconnect(outageMs);
    }
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
    retryTimer.unref();
  }

  await connect();
  return {
    async ping() {
      const c = client;
      if (!c) return;
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`LISTEN ${opts.channel} ping timed out`)), PING_TIMEOUT_MS);
      });
      try {
        await Promise.race([c.query('SELECT 1'), timeout]);
      } catch (err) {
        // Ends the client; its 'end' event schedules the reconnect.
        c.emit('error', err as Error);
      } finally {
        clearTimeout(timer);
      }
    },
    async close() {
      closed = true;
      if (retryTimer) clearTimeout(retryTimer);
      const c = client;
      client = null;
      await c?.end().catch(() => {});
    },
  };
}
