// The dispatcher's wake-ups: LISTEN on a dedicated, self-reconnecting connection. Notifications carry
// no data the dispatcher needs; after a reconnect it wakes too, since anything sent while down was missed.
import { openListenConnection } from '../db/listen-connection.ts';
import type { Logger } from '../logger.ts';

export interface Listener {
  close(): Promise<void>;
}

export interface ListenOptions {
  databaseUrl: string;
  channel: string;
  /** called on every notification, and after every (re)connect */
  onWake: () => void;
  log: Logger;
  applicationName?: string;
}

/** Connects before resolving, so a wrong URL fails start-up instead of retrying forever. */
export async function listen(opts: ListenOptions): Promise<Listener> {
  const connection = await openListenConnection({
    client: { connectionString: opts.databaseUrl, application_name: opts.applicationName ?? 'stream-api:listen' },
    channel: opts.channel,
    onNotification: () => opts.onWake(),
    onReconnect: () => opts.onWake(),
    log: opts.log,
  });
  opts.onWake();
  return { close: () => connection.close() };
}
