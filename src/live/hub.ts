// The live hub: ONE `LISTEN upload_events` connection per API process, fanned out in memory to the
// subscribers of an upload (by tenant and upload: a topic is only ever created for a tenant that can
// see the upload) and of a tenant's feed (by tenantId; it also gets the tenant's operational notices,
// such as endpoint.disabled from a dispatcher). A client costs a map entry, never a database
// connection; it is removed when the client goes away.
import type { Kysely } from 'kysely';
import type pg from 'pg';
import type { DB } from '../db/schema.ts';
import type { Logger } from '../logger.ts';
import { UPLOAD_EVENTS_CHANNEL } from '../uploads/channels.ts';
import {
  createEventIds,
  parseTenantNotice,
  parseUploadEvent,
  ProgressTracker,
  type TenantNotice,
  toFeedData,
  toProgressData,
  type UploadEvent,
} from './events.ts';
import { openListenConnection, type ListenConnection } from '../db/listen-connection.ts';
import type { StreamAccess } from './access.ts';
import { AccessWatch, type AccessCheckReport } from './access-watch.ts';
import { isUploadVisible, loadStatusBody, recentUploadEvents } from './live.repository.ts';
import type { FeedSubscriber, UploadSubscriber } from './sessions.ts';

export interface LiveHubOptions {
  db: Kysely<DB>;
  pool: pg.Pool;
  logger: Logger;
  /** where to LISTEN; defaults to the pool's own connection settings */
  databaseUrl?: string;
  /** heartbeat period, and the period of the access re-check of every open stream (default 15 000) */
  heartbeatMs?: number;
  /** progress ticks closer together than this (database clock) are not passed on */
  progressMinIntervalMs?: number;
}

interface Topic {
  tenantId: string;
  uploadId: string;
  subscribers: Set<UploadSubscriber>;
  /** an upload's updates are delivered in order, although status bodies are read asynchronously */
  chain: Promise<void>;
}

/** Tuning of the live routes (defaults are the production values; tests shorten them). */
export interface LiveOptions {
  /** heartbeat and access re-check period, ms (default 15 000) */
  heartbeatMs?: number;
  /** lifetime of a token from POST /auth/token, seconds (default 300) */
  accessTokenTtlSeconds?: number;
}

/** Rows of catch-up per reconnect, at most: a dashboard re-reads the list if it needs more. */
const RESYNC_LIMIT = 1000;
/** Forget an upload's progress state after this long without news. */
const TRACK_IDLE_MS = 10 * 60_000;

/**
 * Topics are keyed by tenant AND upload: the tenant whose status reads feed a topic is part of its
 * identity, never taken from whoever subscribed first. (Upload ids are unique, so the owner's key is
 * the only one a NOTIFY payload — which carries the owner's tenant — can ever reach.)
 */
const topicKey = (tenantId: string, uploadId: string): string => `${tenantId}/${uploadId}`;

export class LiveHub {
  readonly nextEventId = createEventIds();
  private readonly topics = new Map<string, Topic>();
  private readonly feeds = new Map<string, Set<FeedSubscriber>>();
  private readonly tracker: ProgressTracker;
  private readonly access: AccessWatch;
  private readonly log: Logger;
  private listening: Promise<ListenConnection> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(private readonly opts: LiveHubOptions) {
    this.tracker = new ProgressTracker(opts.progressMinIntervalMs ?? 900);
    this.log = opts.logger.child({ component: 'live-hub' });
    this.access = new AccessWatch(opts.db, this.log);
  }

  /**
   * Subscribes to one upload's updates if the tenant of `access` can see it; resolves to the
   * unsubscribe, or null (nothing subscribed, no topic created) for an unknown upload or another
   * tenant's. The subscriber is revoked when its access ends (see AccessWatch). Throws when the hub is
   * closed or the LISTEN connection cannot be opened.
   */
  async subscribeUpload(access: StreamAccess, uploadId: string, subscriber: UploadSubscriber): Promise<(() => void) | null> {
    if (this.closed) throw new Error('live hub is closed');
    const { tenantId } = access;
    if (!(await isUploadVisible(this.opts.db, tenantId, uploadId))) return null;
    const key = topicKey(tenantId, uploadId);
    let topic = this.topics.get(key);
    if (!topic) {
      topic = { tenantId, uploadId, subscribers: new Set(), chain: Promise.resolve() };
      this.topics.set(key, topic);
    }
    topic.subscribers.add(subscriber);
    this.access.add(subscriber, access, uploadId);
    const unsubscribe = () => {
      this.access.remove(subscriber);
      const current = this.topics.get(key);
      if (!current?.subscribers.delete(subscriber)) return;
      if (current.subscribers.size === 0) this.topics.delete(key);
    };
    return this.afterListening(unsubscribe);
  }

  /** Subscribes to every upload event of the tenant of `access`, until its access ends; resolves to the unsubscribe. */
  async subscribeTenant(access: StreamAccess, subscriber: FeedSubscriber): Promise<() => void> {
    const { tenantId } = access;
    let set = this.feeds.get(tenantId);
    if (!set) this.feeds.set(tenantId, (set = new Set()));
    set.add(subscriber);
    this.access.add(subscriber, access, null);
    const unsubscribe = () => {
      this.access.remove(subscriber);
      const current = this.feeds.get(tenantId);
      if (!current?.delete(subscriber)) return;
      if (current.size === 0) this.feeds.delete(tenantId);
    };
    return this.afterListening(unsubscribe);
  }

  /** Re-checks every open stream's access now (one query); the heartbeat does this periodically. */
  checkAccess(): Promise<void> {
    return this.access.check();
  }

  /** Access checks run so far, and what the last one looked at and took. */
  get accessChecks(): { checks: number; last: AccessCheckReport | null } {
    return { checks: this.access.checks, last: this.access.lastCheck };
  }

  /** Upload topics held (one per tenant and upload with subscribers). */
  get topicCount(): number {
    return this.topics.size;
  }

  get subscriberCount(): number {
    let count = 0;
    for (const topic of this.topics.values()) count += topic.subscribers.size;
    for (const set of this.feeds.values()) count += set.size;
    return count;
  }

  /** Ends every open stream (before the HTTP server closes: it waits for open responses). */
  shutdownSessions(): void {
    for (const topic of [...this.topics.values()]) for (const s of [...topic.subscribers]) s.shutdown();
    for (const set of [...this.feeds.values()]) for (const s of [...set]) s.shutdown();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.shutdownSessions();
    if (this.timer) clearInterval(this.timer);
    const listening = this.listening;
    this.listening = null;
    await listening?.then((c) => c.close(), () => {});
  }

  /** The LISTEN connection opens with the first subscriber and stays for the life of the process. */
  private async afterListening(unsubscribe: () => void): Promise<() => void> {
    try {
      if (this.closed) throw new Error('live hub is closed');
      await this.listen();
      return unsubscribe;
    } catch (err) {
      unsubscribe();
      throw err;
    }
  }

  private listen(): Promise<ListenConnection> {
    if (this.listening) return this.listening;
    const { pool } = this.opts;
    const attempt = openListenConnection({
      client: {
        ...pool.options,
        ...(this.opts.databaseUrl ? { connectionString: this.opts.databaseUrl } : {}),
        application_name: 'stream-api:live',
      },
      channel: UPLOAD_EVENTS_CHANNEL,
      onNotification: (payload) => this.onNotification(payload),
      onReconnect: (outageMs) => void this.resync(outageMs),
      log: this.log,
    });
    this.listening = attempt;
    attempt.then(
      (connection) => {
        if (this.closed) return void connection.close();
        this.timer = setInterval(() => this.tick(connection), this.opts.heartbeatMs ?? 15_000);
        this.timer.unref();
      },
      // A failed first connect is retried by the next subscriber.
      () => {
        if (this.listening === attempt) this.listening = null;
      },
    );
    return attempt;
  }

  private tick(connection: ListenConnection): void {
    for (const topic of this.topics.values()) for (const s of topic.subscribers) s.heartbeat();
    for (const set of this.feeds.values()) for (const s of set) s.heartbeat();
    void this.access.check();
    this.tracker.prune(Date.now(), TRACK_IDLE_MS);
    void connection.ping();
  }

  private onNotification(payload: string | undefined): void {
    const notice = parseTenantNotice(payload);
    if (notice) return this.publishNotice(notice);
    const event = parseUploadEvent(payload);
    if (!event) {
      this.log.warn({ payload: payload?.slice(0, 200) }, 'ignored a malformed upload event');
      return;
    }
    const { statusChanged, progressDue, rowsPerSecond } = this.tracker.classify(event, Date.now());
    if (!statusChanged && !progressDue) return;
    this.publishToFeed(event, rowsPerSecond);
    const topic = this.topics.get(topicKey(event.tenantId, event.uploadId));
    if (!topic) return;
    if (statusChanged) this.publishStatus(topic);
    if (progressDue) this.publishProgress(topic, event, rowsPerSecond);
  }

  private publishToFeed(event: UploadEvent, rowsPerSecond: number): void {
    const set = this.feeds.get(event.tenantId);
    if (!set) return;
    const data = toFeedData(event, rowsPerSecond);
    for (const s of [...set]) s.feed(data);
  }

  /** An operational event (endpoint.disabled) goes to the tenant's feed as an event of its own name. */
  private publishNotice(notice: TenantNotice): void {
    const set = this.feeds.get(notice.tenantId);
    if (!set) return;
    for (const s of [...set]) s.notice?.(notice.kind, notice.data);
  }

  /** Reads the status body once for all of the upload's subscribers. */
  private publishStatus(topic: Topic): void {
    this.enqueue(topic, async () => {
      const body = await loadStatusBody(this.opts, topic.tenantId, topic.uploadId);
      if (!body) return this.uploadGone(topic);
      for (const s of [...topic.subscribers]) s.update({ kind: 'status', body });
    });
  }

  /** The status read found the upload gone (deleted): its streams end now rather than at the next access check. */
  private uploadGone(topic: Topic): void {
    for (const s of [...topic.subscribers]) s.revoke('not_found');
  }

  private publishProgress(topic: Topic, event: UploadEvent, rowsPerSecond: number): void {
    const update = { kind: 'progress' as const, attempt: event.attempt, data: toProgressData(event, rowsPerSecond) };
    this.enqueue(topic, async () => {
      for (const s of [...topic.subscribers]) s.update(update);
    });
  }

  private enqueue(topic: Topic, work: () => Promise<void>): void {
    topic.chain = topic.chain.then(work).catch((err: unknown) => this.log.warn({ err }, 'live update failed'));
  }

  /**
   * Notifications sent while the connection was down are lost: send every subscriber the current
   * state instead — each upload's status (and its counts), and each feed the uploads that changed.
   */
  private async resync(outageMs: number): Promise<void> {
    for (const topic of this.topics.values()) {
      this.enqueue(topic, async () => {
        const body = await loadStatusBody(this.opts, topic.tenantId, topic.uploadId);
        if (!body) return this.uploadGone(topic);
        for (const s of [...topic.subscribers]) s.update({ kind: 'status', body });
        if (body.status !== 'processing') return;
        const progress = toProgressData(body, this.tracker.rateOf(topic.uploadId));
        for (const s of [...topic.subscribers]) s.update({ kind: 'progress', attempt: body.attempt, data: progress });
      });
    }
    if (this.feeds.size === 0) return;
    try {
      // A margin over the outage: the lost connection was noticed some time after it died.
      const seconds = outageMs / 1000 + 30;
      const events = await recentUploadEvents(this.opts.pool, [...this.feeds.keys()], seconds, RESYNC_LIMIT);
      for (const event of events) this.publishToFeed(event, this.tracker.rateOf(event.uploadId));
    } catch (err) {
      this.log.warn({ err }, 'live feed catch-up after reconnect failed');
    }
  }
}
