// Live-progress test helpers: a real Server-Sent Events client (node:http, one socket per stream)
// that parses frames as EventSource would, a real WebSocket client, and uploads that stay open (no
// job ever runs them).
import http from 'node:http';
import WebSocket from 'ws';
import { buildApp } from '../../src/http/app.ts';
import type { StreamAccess } from '../../src/live/access.ts';
import type { LiveOptions } from '../../src/live/hub.ts';
import { findApiKey } from '../../src/tenants/tenants.repository.ts';
import type { TestEnv } from './env.ts';

/** An upload row with no job: it stays `uploaded`, so a stream of it stays open. */
export async function insertIdleUpload(t: TestEnv, tenantId: string): Promise<string> {
  const id = crypto.randomUUID();
  await t.pool.query(
    `INSERT INTO uploads (id, tenant_id, dataset, filename, size_bytes, sha256, object_key)
     VALUES ($1, $2, 'webhook_events', 'idle.csv', 100, 'x', 'nowhere')`,
    [id, tenantId],
  );
  return id;
}

/** The real app on a real loopback socket, with the live routes tuned (a short heartbeat, token lifetime). */
export async function startLiveApi(t: TestEnv, live: LiveOptions) {
  const app = await buildApp({ config: t.config, db: t.db, pool: t.pool, store: t.store, logger: t.logger, live });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  if (!address || typeof address === 'string') throw new Error('no address');
  return { app, url: `http://127.0.0.1:${address.port}`, close: () => app.close() };
}

/** What an API key grants a live stream (as the auth hook records it), for subscribing to a hub directly. */
export async function keyAccess(t: TestEnv, key: string): Promise<StreamAccess> {
  const found = await findApiKey(t.db, key);
  if (!found) throw new Error('no such key');
  return { tenantId: found.tenant.id, apiKeyId: found.apiKeyId, token: null };
}

/** A tenant, its key, and what the key grants a live stream. */
export async function newTenantAccess(t: TestEnv): Promise<{ tenantId: string; key: string; access: StreamAccess }> {
  const tenant = await t.newTenantKey();
  return { ...tenant, access: await keyAccess(t, tenant.key) };
}

export interface SseEvent {
  id: string | undefined;
  event: string;
  data: any;
  /** Date.now() when the frame arrived */
  receivedAt: number;
}

export interface SseStream {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** the JSON body of a response that is not a stream (errors) */
  body: any;
  events: SseEvent[];
  comments: string[];
  /** resolves when the server ends the stream */
  ended: Promise<void>;
  isEnded(): boolean;
  waitFor(predicate: (e: SseEvent) => boolean, timeoutMs?: number): Promise<SseEvent>;
  close(): void;
}

export function openSse(
  baseUrl: string,
  pathname: string,
  opts: { key?: string | null; headers?: Record<string, string> } = {},
): Promise<SseStream> {
  return new Promise((resolve, reject) => {
    const req = http.request(new URL(pathname, baseUrl), {
      agent: false,
      headers: {
        accept: 'text/event-stream',
        ...(opts.key ? { authorization: `Bearer ${opts.key}` } : {}),
        ...opts.headers,
      },
    });
    req.on('error', reject);
    req.on('response', (res) => {
      const events: SseEvent[] = [];
      const comments: string[] = [];
      const waiters = new Set<() => void>();
      let ended = false;
      let buffer = '';
      let raw = '';
      const wake = () => {
        for (const w of [...waiters]) w();
      };
      const stream: SseStream = {
        status: res.statusCode ?? 0,
        headers: res.headers,
        body: null,
        events,
        comments,
        ended: new Promise<void>((done) => {
          const finish = () => {
            if (ended) return;
            ended = true;
            wake();
            done();
          };
          res.on('end', finish);
          res.on('close', finish);
          res.on('error', finish);
        }),
        isEnded: () => ended,
        waitFor(predicate, timeoutMs = 30_000) {
          return new Promise((ok, fail) => {
            const check = () => {
              const found = events.find(predicate);
              if (found) {
                cleanup();
                ok(found);
              } else if (ended) {
                cleanup();
                fail(new Error(`stream ended without the event; got ${events.map((e) => e.event).join(',')}`));
              }
            };
            const timer = setTimeout(() => {
              cleanup();
              fail(new Error(`no such event in ${timeoutMs} ms; got ${events.map((e) => e.event).join(',')}`));
            }, timeoutMs);
            const cleanup = () => {
              clearTimeout(timer);
              waiters.delete(check);
            };
            waiters.add(check);
            check();
          });
        },
        close: () => req.destroy(),
      };
      res.setEncoding('utf8');
      const isStream = String(res.headers['content-type'] ?? '').startsWith('text/event-stream');
      res.on('data', (chunk: string) => {
        if (!isStream) {
          raw += chunk;
          return;
        }
        buffer += chunk;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) !== -1) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let id: string | undefined;
          let event = 'message';
          const data: string[] = [];
          let isEvent = false;
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) comments.push(line.slice(1).trim());
            else if (line.startsWith('id:')) id = line.slice(3).trim();
            else if (line.startsWith('event:')) event = line.slice(6).trim();
            else if (line.startsWith('data:')) {
              data.push(line.slice(5).replace(/^ /, ''));
              isEvent = true;
            }
          }
          if (isEvent) events.push({ id, event, data: JSON.parse(data.join('\n')), receivedAt: Date.now() });
        }
        wake();
      });
      if (isStream) resolve(stream);
      else
        res.on('end', () => {
          stream.body = raw ? JSON.parse(raw) : null;
          resolve(stream);
        });
    });
    req.end();
  });
}

export interface WsMessage {
  event: string;
  id: string;
  data: any;
}

export interface WsResult {
  /** set when the server answered the upgrade with an HTTP error */
  rejected?: { status: number; body: any };
  messages: WsMessage[];
  closed: Promise<{ code: number; reason: string }>;
  socket: WebSocket;
}

/** Opens a WebSocket (key as a Bearer header, or none); resolves when open or when the upgrade is refused. */
export function openWs(baseUrl: string, pathname: string, key: string | null): Promise<WsResult> {
  const url = baseUrl.replace(/^http/, 'ws') + pathname;
  const socket = new WebSocket(url, { headers: key ? { authorization: `Bearer ${key}` } : {} });
  const messages: WsMessage[] = [];
  socket.on('message', (raw) => messages.push(JSON.parse(String(raw))));
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    socket.on('close', (code, reason) => resolve({ code, reason: String(reason) })),
  );
  return new Promise((resolve, reject) => {
    socket.on('open', () => resolve({ messages, closed, socket }));
    socket.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ rejected: { status: res.statusCode ?? 0, body: JSON.parse(body) }, messages, closed, socket }));
    });
    socket.on('error', (err) => {
      if (!/Unexpected server response/.test(err.message)) reject(err);
    });
  });
}

/** Backends of this test database waiting for a lock (requests parked behind a test's LOCK TABLE). */
export async function lockWaiters(t: TestEnv): Promise<number> {
  const { rows } = await t.pool.query(
    `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
  );
  return rows[0].n;
}
