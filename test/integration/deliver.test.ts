// Real HTTP servers on loopback. Loopback is forbidden by default, so every test that expects a
// delivery passes an allow-list; the SSRF tests run without one and count connections.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createDeliverer, type Deliverer } from '../../src/notify/deliver.ts';
import { parseAllowedCidrs } from '../../src/notify/ssrf.ts';
import { webhookHeaders } from '../../src/notify/sign.ts';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

interface TestServer {
  server: Server;
  port: number;
  connections: number;
  requests: { method: string; url: string; headers: IncomingMessage['headers']; body: string }[];
  handler: Handler;
}

async function startServer(host: string): Promise<TestServer> {
  const state: TestServer = {
    server: undefined as unknown as Server, port: 0, connections: 0, requests: [],
    handler: (_req, res) => res.end('ok'),
  };
  const sockets = new Set<Socket>();
  state.server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      state.requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString() });
      state.handler(req, res);
    });
  });
  state.server.on('connection', (socket: Socket) => {
    state.connections += 1;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  // Hung handlers never end their sockets; destroy them so close() does not wait forever.
  const close = state.server.close.bind(state.server);
  state.server.close = ((cb?: (err?: Error) => void) => {
    for (const s of sockets) s.destroy();
    return close(cb);
  }) as Server['close'];
  await new Promise<void>((resolve) => state.server.listen(0, host, resolve));
  state.port = (state.server.address() as AddressInfo).port;
  return state;
}

const closeServer = (s: TestServer) => new Promise<void>((resolve) => s.server.close(() => resolve()));

const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const BODY = '{"type":"job.completed","data":{"jobId":"job_1","rows":3}}';
const TIMEOUT_MS = 600;
const LOOPBACK = parseAllowedCidrs('127.0.0.0/8,::1/128');

let v4: TestServer;
let v6: TestServer;
let open: Deliverer;   // allow-list: loopback
let strict: Deliverer; // no allow-list

beforeAll(async () => {
  v4 = await startServer('127.0.0.1');
  v6 = await startServer('::1');
  open = createDeliverer({ timeoutMs: TIMEOUT_MS, allowedCidrs: LOOPBACK, userAgent: 'stream-api-webhooks/test' });
  strict = createDeliverer({ timeoutMs: TIMEOUT_MS, userAgent: 'stream-api-webhooks/test' });
});

afterAll(async () => {
  await Promise.all([open.close(), strict.close()]);
  await Promise.all([closeServer(v4), closeServer(v6)]);
});

afterEach(() => {
  for (const s of [v4, v6]) {
    s.handler = (_req, res) => res.end('ok');
    s.requests = [];
    s.connections = 0;
  }
});

const url = (path = '/hook') => `http://127.0.0.1:${v4.port}${path}`;
const headers = () => webhookHeaders([SECRET], 'msg_test1', BODY, Math.floor(Date.now() / 1000));

describe('deliver: responses', () => {
  it('200 → ok, with the exact body, webhook headers and User-Agent', async () => {
    v4.handler = (_req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('thanks');
    const sent = headers();
    const result = await open.deliver(url('/hook?tenant=7'), sent, BODY);
    expect(result).toMatchObject({ ok: true, statusCode: 200, errorCode: null, errorMessage: null, responseExcerpt: 'thanks' });
    expect(result.durationMs).toBeGreaterThanOrEqual(0);
    const [req] = v4.requests;
    expect(req?.method).toBe('POST');
    expect(req?.url).toBe('/hook?tenant=7');
    expect(req?.body).toBe(BODY);
    expect(req?.headers['user-agent']).toBe('stream-api-webhooks/test');
    expect(req?.headers['content-type']).toBe('application/json');
    expect(req?.headers['webhook-id']).toBe('msg_test1');
    expect(req?.headers['webhook-signature']).toBe(sent['webhook-signature']);
  });

  it('the User-Agent option wins over a caller-supplied one', async () => {
    await open.deliver(url(), { ...headers(), 'User-Agent': 'spoofed' }, BODY);
    expect(v4.requests[0]?.headers['user-agent']).toBe('stream-api-webhooks/test');
  });

  it('204 with no body → ok, null excerpt', async () => {
    v4.handler = (_req, res) => res.writeHead(204).end();
    expect(await open.deliver(url(), headers(), BODY)).toMatchObject({ ok: true, statusCode: 204, responseExcerpt: null });
  });

  it('500 → http_5xx with the response excerpt', async () => {
    v4.handler = (_req, res) => res.writeHead(500).end('database on fire');
    expect(await open.deliver(url(), headers(), BODY)).toMatchObject({
      ok: false, statusCode: 500, errorCode: 'http_5xx', errorMessage: 'HTTP 500', responseExcerpt: 'database on fire',
    });
  });

  it('410 → http_4xx', async () => {
    v4.handler = (_req, res) => res.writeHead(410).end('gone');
    expect(await open.deliver(url(), headers(), BODY)).toMatchObject({ ok: false, statusCode: 410, errorCode: 'http_4xx' });
  });

  it('429 and 503 → Retry-After is reported', async () => {
    v4.handler = (_req, res) => res.writeHead(429, { 'retry-after': '30' }).end();
    expect(await open.deliver(url(), headers(), BODY)).toMatchObject({ statusCode: 429, errorCode: 'http_4xx', retryAfter: '30' });
    v4.handler = (_req, res) => res.writeHead(503, { 'retry-after': 'Wed, 21 Oct 2099 07:28:00 GMT' }).end();
    expect(await open.deliver(url(), headers(), BODY)).toMatchObject({ statusCode: 503, retryAfter: 'Wed, 21 Oct 2099 07:28:00 GMT' });
  });

  it('302 → http_3xx and the redirect is not followed', async () => {
    v4.handler = (req, res) => {
      if (req.url === '/hook') res.writeHead(302, { location: '/elsewhere' }).end();
      else res.end('followed!');
    };
    const result = await open.deliver(url(), headers(), BODY);
    expect(result).toMatchObject({ ok: false, statusCode: 302, errorCode: 'http_3xx' });
    expect(result.errorMessage).toContain('/elsewhere');
    expect(v4.requests.map((r) => r.url)).toEqual(['/hook']);
  });

  it('a 10 MB response → excerpt ≤ 2 KiB, and it returns promptly', async () => {
    const chunk = Buffer.alloc(64 * 1024, 'x');
    v4.handler = (_req, res) => {
      res.writeHead(200, { 'content-length': String(160 * chunk.length) });
      let sent = 0;
      const pump = () => {
        while (sent < 160) {
          sent += 1;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
    };
    const started = Date.now();
    const result = await open.deliver(url(), headers(), BODY);
    expect(Date.now() - started).toBeLessThan(TIMEOUT_MS);
    expect(result).toMatchObject({ ok: true, statusCode: 200, errorCode: null });
    expect(Buffer.byteLength(result.responseExcerpt ?? '')).toBe(2048);
  });

  it('the excerpt never splits a UTF-8 character and carries no NUL bytes', async () => {
    v4.handler = (_req, res) => res.writeHead(500).end('a' + '€'.repeat(1000) + '\u0000');
    const result = await open.deliver(url(), headers(), BODY);
    const excerpt = result.responseExcerpt ?? '';
    expect(Buffer.byteLength(excerpt)).toBeLessThanOrEqual(2048);
    expect(excerpt).toBe('a' + '€'.repeat(682));
    v4.handler = (_req, res) => res.writeHead(400).end('bad\u0000input');
    expect((await open.deliver(url(), headers(), BODY)).responseExcerpt).toBe('bad\uFFFDinput');
  });
});

describe('deliver: timeouts and network errors', () => {
  it('a server that never answers → timeout within ~timeoutMs', async () => {
    v4.handler = () => {};
    const started = Date.now();
    const result = await open.deliver(url(), headers(), BODY);
    const elapsed = Date.now() - started;
    expect(result).toMatchObject({ ok: false, statusCode: null, errorCode: 'timeout' });
    expect(elapsed).toBeGreaterThanOrEqual(TIMEOUT_MS - 50);
    expect(elapsed).toBeLessThan(TIMEOUT_MS + 500);
  });

  it('headers sent, body never finished → timeout (status kept for the record)', async () => {
    v4.handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('partial ');
      const drip = setInterval(() => res.write('.'), 50); // keeps the body timer from firing on its own
      res.on('close', () => clearInterval(drip));
    };
    const started = Date.now();
    const result = await open.deliver(url(), headers(), BODY);
    expect(result).toMatchObject({ ok: false, statusCode: 200, errorCode: 'timeout' });
    expect(result.responseExcerpt?.startsWith('partial ')).toBe(true);
    expect(Date.now() - started).toBeLessThan(TIMEOUT_MS + 500);
  });

  it('a closed port → connect_refused', async () => {
    const tmp = await startServer('127.0.0.1');
    const port = tmp.port;
    await closeServer(tmp);
    const result = await open.deliver(`http://127.0.0.1:${port}/`, headers(), BODY);
    expect(result).toMatchObject({ ok: false, statusCode: null, errorCode: 'connect_refused' });
  });

  it('the server drops the connection mid-request → reset', async () => {
    v4.handler = (req) => req.socket.destroy();
    expect(await open.deliver(url(), headers(), BODY)).toMatchObject({ ok: false, statusCode: null, errorCode: 'reset' });
  });

  it('https to a plain-HTTP port → tls', async () => {
    const result = await open.deliver(`https://127.0.0.1:${v4.port}/`, headers(), BODY);
    expect(result).toMatchObject({ ok: false, statusCode: null, errorCode: 'tls' });
  });

  it('an unresolvable host → dns', async () => {
    const result = await open.deliver('http://no-such-host.invalid/', headers(), BODY);
    expect(result).toMatchObject({ ok: false, statusCode: null, errorCode: 'dns' });
  });

  it('an invalid URL is refused without any I/O', async () => {
    const result = await open.deliver('ftp://127.0.0.1/', headers(), BODY);
    expect(result).toMatchObject({ ok: false, errorCode: 'ssrf_blocked', errorMessage: 'URL refused: unsupported_scheme' });
  });
});

describe('deliver: SSRF', () => {
  const targets = () => [
    `http://127.0.0.1:${v4.port}/`,
    `http://localhost:${v4.port}/`,
    `http://2130706433:${v4.port}/`,
    `http://0x7f000001:${v4.port}/`,
    `http://127.1:${v4.port}/`,
    `http://[::1]:${v6.port}/`,
    `http://[::ffff:127.0.0.1]:${v4.port}/`,
  ];

  it('without an allow-list, loopback in every spelling is blocked and no connection is made', async () => {
    for (const target of targets()) {
      const result = await strict.deliver(target, headers(), BODY);
      expect(result, target).toMatchObject({ ok: false, statusCode: null, errorCode: 'ssrf_blocked' });
    }
    expect(v4.connections).toBe(0);
    expect(v6.connections).toBe(0);
  });

  it('a DNS name is checked on the resolved address (connect-time lookup)', async () => {
    const result = await strict.deliver(`http://localhost:${v4.port}/`, headers(), BODY);
    expect(result.errorCode).toBe('ssrf_blocked');
    expect(result.errorMessage).toContain('localhost resolves only to forbidden addresses');
    expect(v4.connections).toBe(0);
  });

  it('with allow-list 127.0.0.0/8,::1/128, every spelling is delivered', async () => {
    for (const target of targets()) {
      const result = await open.deliver(target, headers(), BODY);
      expect(result, target).toMatchObject({ ok: true, statusCode: 200 });
    }
    expect(v4.requests).toHaveLength(6);
    expect(v6.requests).toHaveLength(1);
  });
});
