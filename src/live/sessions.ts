// One client's stream, whatever the transport (SSE or WebSocket): what to send, what to skip, when
// to end. No I/O: the transport is a LiveSink.
import { errorBody } from '../errors.ts';
import { ACCESS_LOST, isAccessLost, type AccessLost, type EndReason } from './access.ts';
import type { Revocable } from './access-watch.ts';
import { isFinalStatus, type FeedData, type ProgressData } from './events.ts';
import type { StatusBody } from './live.repository.ts';

export type UploadEventName = 'status' | 'progress' | 'done' | 'error';

export interface LiveSink {
  send(event: string, id: string, data: unknown): void;
  /** keeps proxies from timing the connection out, and finds dead peers */
  heartbeat(): void;
  /**
   * `done`: the stream is complete; `shutdown`: the server is going away (clients should reconnect);
   * an access code: access ended (an `error` event saying so was sent just before).
   */
  end(reason: 'done' | 'shutdown' | AccessLost): void;
}

/** What the hub hands to an upload's subscribers. A final status body ends the stream as `done`. */
export type UploadUpdate =
  | { kind: 'status'; body: StatusBody }
  | { kind: 'progress'; attempt: number; data: ProgressData };

export interface UploadSubscriber extends Revocable {
  update(update: UploadUpdate): void;
  heartbeat(): void;
  shutdown(): void;
}

export interface FeedSubscriber extends Revocable {
  feed(data: FeedData): void;
  /** an operational event of the tenant (e.g. `endpoint.disabled`), sent as an event of that name */
  notice?(event: string, data: unknown): void;
  heartbeat(): void;
  shutdown(): void;
}

/** What every session shares: ending once, saying why, and telling whoever needs to know (the hub's unsubscribe). */
abstract class Session implements Revocable {
  protected sink: LiveSink | null = null;
  protected ended = false;
  private reason: EndReason | null = null;
  private readonly endListeners: (() => void)[] = [];

  constructor(protected readonly nextId: () => string) {}

  /** Runs `fn` when the session ends — at once if it already has. */
  whenEnded(fn: () => void): void {
    if (this.ended) fn();
    else this.endListeners.push(fn);
  }

  get isEnded(): boolean {
    return this.ended;
  }

  /** How the session ended (null while open). */
  get endReason(): EndReason | null {
    return this.reason;
  }

  heartbeat(): void {
    if (!this.ended) this.sink?.heartbeat();
  }

  /** The server is going away. */
  shutdown(): void {
    if (this.ended) return;
    this.sink?.end('shutdown');
    this.markEnded('shutdown');
  }

  /** Access ended (key revoked, token expired, upload gone): a last `error` event says why, then the end. */
  revoke(reason: AccessLost): void {
    if (this.ended) return;
    if (this.sink) this.sayRevoked(this.sink, reason);
    this.markEnded(reason);
  }

  /** The client went away: nothing more to send. */
  closed(): void {
    this.markEnded('client_gone');
  }

  /** For `start`: a session that ended before its transport was ready ends the transport the same way. */
  protected endedBeforeStart(sink: LiveSink): void {
    const reason = this.reason;
    if (reason !== null && isAccessLost(reason)) this.sayRevoked(sink, reason);
    else sink.end('shutdown');
  }

  protected markEnded(reason: EndReason): void {
    if (this.ended) return;
    this.ended = true;
    this.reason = reason;
    for (const fn of this.endListeners.splice(0)) fn();
  }

  private sayRevoked(sink: LiveSink, reason: AccessLost): void {
    sink.send('error', this.nextId(), errorBody(reason, ACCESS_LOST[reason].message));
    sink.end(reason);
  }
}

/**
 * GET /uploads/:id/events and /uploads/:id/ws. Subscribed before the snapshot is read (so nothing
 * falls between the two); updates arriving meanwhile wait for `start`. Every event is a snapshot, so
 * an update no newer than what was sent is skipped rather than sent out of order.
 */
export class UploadSession extends Session implements UploadSubscriber {
  private waiting: UploadUpdate[] | null = [];
  private sent: { attempt: number; status: string; bytesProcessed: number } | null = null;

  /** `resumed`: the client has seen events before (Last-Event-ID); after the end it only needs `done`. */
  start(sink: LiveSink, snapshot: StatusBody, resumed: boolean): void {
    this.sink = sink;
    if (this.ended) return this.endedBeforeStart(sink);
    if (isFinalStatus(snapshot.status)) {
      if (!resumed) sink.send('status', this.nextId(), snapshot);
      return this.finish(snapshot);
    }
    this.sendStatus(snapshot);
    const waiting = this.waiting ?? [];
    this.waiting = null;
    for (const update of waiting) this.update(update);
  }

  update(update: UploadUpdate): void {
    if (this.ended) return;
    if (this.waiting) {
      this.waiting.push(update);
      return;
    }
    const sent = this.sent!;
    if (update.kind === 'status') {
      const body = update.body;
      if (isFinalStatus(body.status)) return this.finish(body);
      if (body.attempt < sent.attempt || (body.attempt === sent.attempt && body.status === sent.status)) return;
      this.sendStatus(body);
      return;
    }
    const { attempt, data } = update;
    if (attempt !== sent.attempt || sent.status !== 'processing' || data.status !== 'processing') return;
    if (data.bytesProcessed < sent.bytesProcessed) return;
    sent.bytesProcessed = data.bytesProcessed;
    this.sink!.send('progress', this.nextId(), data);
  }

  private sendStatus(body: StatusBody): void {
    this.sent = { attempt: body.attempt, status: body.status, bytesProcessed: body.bytesProcessed };
    this.sink!.send('status', this.nextId(), body);
  }

  private finish(body: StatusBody): void {
    this.sink!.send('done', this.nextId(), body);
    this.sink!.end('done');
    this.markEnded('done');
  }
}

/** GET /events: every upload event of one tenant, as it comes; never ends by itself. */
export class FeedSession extends Session implements FeedSubscriber {
  private waiting: { event: string; data: unknown }[] | null = [];

  start(sink: LiveSink): void {
    this.sink = sink;
    if (this.ended) return this.endedBeforeStart(sink);
    const waiting = this.waiting ?? [];
    this.waiting = null;
    for (const frame of waiting) this.notice(frame.event, frame.data);
  }

  feed(data: FeedData): void {
    this.notice('upload', data);
  }

  notice(event: string, data: unknown): void {
    if (this.ended) return;
    if (this.waiting) this.waiting.push({ event, data });
    else this.sink!.send(event, this.nextId(), data);
  }
}
