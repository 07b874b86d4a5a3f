// Keeps checking that every open live stream may stay open. A stream is admitted once, by its key
// or token; this ends it when the key is revoked, the token expires (a timer at its expiry) or the
// upload it follows is gone — whatever made it so (CLI, SQL, a deleted tenant or upload).
//
// One query per check for ALL the process's streams (access.repository.ts), run on the hub's
// heartbeat: 1,000 streams cost one round trip per heartbeat, not 1,000.
import type { Kysely } from 'kysely';
import type { DB } from '../db/schema.ts';
import type { Logger } from '../logger.ts';
import { accessLost, type AccessLost, type StreamAccess } from './access.ts';
import { findValidGrants } from './access.repository.ts';

/** A stream that can be told its access is gone (it ends itself, saying why). */
export interface Revocable {
  revoke(reason: AccessLost): void;
}

/** What the last check looked at, and how long it took in all (gathering, the query, judging, ending streams). */
export interface AccessCheckReport {
  streams: number;
  apiKeys: number;
  tokens: number;
  uploads: number;
  ended: number;
  durationMs: number;
}

interface Watched {
  access: StreamAccess;
  uploadId: string | null;
  expiryTimer: NodeJS.Timeout | null;
}

/** setTimeout's longest delay (about 24.8 days); a later expiry is caught by the periodic check. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class AccessWatch {
  private readonly watched = new Map<Revocable, Watched>();
  private running: Promise<void> | null = null;
  /** checks completed, and the last one: what measurements and tests read */
  checks = 0;
  lastCheck: AccessCheckReport | null = null;

  constructor(
    private readonly db: Kysely<DB>,
    private readonly log: Logger,
  ) {}

  /** Watches a stream of one upload (`uploadId`) or of a tenant's feed (null) until `remove`. */
  add(stream: Revocable, access: StreamAccess, uploadId: string | null): void {
    this.remove(stream);
    let expiryTimer: NodeJS.Timeout | null = null;
    if (access.token) {
      const delayMs = Math.min(MAX_TIMER_MS, Math.max(0, access.token.expiresAtMs - Date.now()));
      expiryTimer = setTimeout(() => this.end(stream, 'token_expired'), delayMs);
      expiryTimer.unref();
    }
    this.watched.set(stream, { access, uploadId, expiryTimer });
  }

  remove(stream: Revocable): void {
    const watched = this.watched.get(stream);
    if (!watched) return;
    if (watched.expiryTimer) clearTimeout(watched.expiryTimer);
    this.watched.delete(stream);
  }

  get size(): number {
    return this.watched.size;
  }

  /**
   * Checks every watched stream in one query and ends those whose access is gone. Never rejects: a
   * failed check is logged and the streams stay open until the next one (a database that cannot
   * answer cannot feed them either). A check asked for while one runs joins it.
   */
  check(): Promise<void> {
    this.running ??= this.run().finally(() => (this.running = null));
    return this.running;
  }

  private async run(): Promise<void> {
    if (this.watched.size === 0) return;
    const startedMs = performance.now();
    // Only streams in this snapshot are judged: one added while the query runs was not asked about.
    const batch = [...this.watched];
    const apiKeyIds = new Set<string>();
    const tokens = new Map<string, Buffer>();
    const uploadIds = new Set<string>();
    for (const [, w] of batch) {
      apiKeyIds.add(w.access.apiKeyId);
      if (w.access.token) tokens.set(w.access.token.hash.toString('hex'), w.access.token.hash);
      if (w.uploadId) uploadIds.add(w.uploadId);
    }
    let valid;
    try {
      valid = await findValidGrants(this.db, {
        apiKeyIds: [...apiKeyIds],
        tokenHashes: [...tokens.values()],
        uploadIds: [...uploadIds],
      });
    } catch (err) {
      this.log.warn({ err, streams: batch.length }, 'live access check failed; streams stay open until the next check');
      return;
    }
    const nowMs = Date.now();
    let ended = 0;
    for (const [stream, w] of batch) {
      if (this.watched.get(stream) !== w) continue; // gone (or re-added) meanwhile
      const reason = accessLost(w.access, w.uploadId, valid, nowMs);
      if (!reason) continue;
      ended += 1;
      this.end(stream, reason);
    }
    this.checks += 1;
    const durationMs = performance.now() - startedMs;
    this.lastCheck = { streams: batch.length, apiKeys: apiKeyIds.size, tokens: tokens.size, uploads: uploadIds.size, ended, durationMs };
  }

  private end(stream: Revocable, reason: AccessLost): void {
    this.remove(stream);
    stream.revoke(reason);
  }
}
