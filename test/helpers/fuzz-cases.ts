// The requests of the HTTP fuzz test: each one derived from (seed, index) alone, so any failure is
// rebuilt from the printed seed whatever the concurrency. Routes, their parameters and methods come
// from the OpenAPI document; the fuzzer knows only which routes take a file (multipart uploads).
import { Rng } from './fuzz.ts';

export interface Operation {
  path: string;
  method: string;
  parameters?: { in: string; name: string; schema?: Record<string, unknown> }[];
}

/** The routes that receive a multipart file: the fuzzer sends them multipart bodies more often. */
export const UPLOAD_PATHS = ['/upload', '/uploads'];

/** Routes that take a JSON body of a known shape: the fuzzer sends them near-valid bodies half the time. */
export const DIRECT_START_PATH = '/uploads/direct';
export const DIRECT_COMPLETE_PATH = '/uploads/{id}/complete';

export interface FuzzCase {
  /** one line saying what was sent (for a failure report) */
  what: string;
  chunks: Buffer[];
  /** the client cuts the connection after writing: no answer expected */
  cut: boolean;
  /** the body is never finished: the idle timeout must answer */
  stall: boolean;
  pauseMs?: number;
  isUpload: boolean;
}

interface Fixtures {
  seed: number;
  operations: Operation[];
  keys: string[];
  uploadIds: string[][];
  token: string;
  csv: string;
}

const LONG = (n: number) => 'x'.repeat(n);

/** A well-formed UUID (v4 layout) drawn from `rng`: names nothing, reproducibly. */
function uuidFrom(rng: Rng): string {
  const hex = rng.bytes(16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

const ODD_STRINGS = ['', ' ', '-1', '0', '1.5', '1e309', 'NaN', 'null', 'true', '[]', '{}', '%00', '%zz', '%E0%A4%A', '💥', '\u202e', '__proto__', 'constructor', "'; DROP TABLE uploads; --", '../../etc/passwd', LONG(300), LONG(9000)];

const CONTENT_TYPES = [
  undefined,
  'application/json',
  'application/json; charset=utf-8',
  'text/plain',
  'text/csv',
  'application/x-www-form-urlencoded',
  'application/octet-stream',
  'multipart/form-data',
  'multipart/form-data; boundary=',
  'multipart/form-data; boundary=""',
  `multipart/form-data; boundary=${LONG(300)}`,
  'multipart/mixed; boundary=abc',
  'garbage/;;;=',
  'application/json; charset=latin1',
];

export class FuzzCases {
  constructor(private readonly f: Fixtures) {}

  make(index: number): FuzzCase {
    const rng = new Rng((this.f.seed + Math.imul(index + 1, 0x9e3779b1)) >>> 0);
    const tenant = rng.int(this.f.keys.length);
    // Upload routes get a quarter of all requests: their body parsing is where most can go wrong.
    const uploads = this.f.operations.filter((op) => op.method === 'POST' && UPLOAD_PATHS.includes(op.path));
    const op = rng.chance(0.25) ? rng.pick(uploads) : rng.pick(this.f.operations);
    const isUpload = op.method === 'POST' && UPLOAD_PATHS.includes(op.path);

    const method = rng.chance(0.05) ? rng.pick(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']) : op.method;
    const target = this.target(rng, op, tenant);
    const headers: [string, string][] = [['Host', 'fuzz.test']];
    const auth = this.authorization(rng, tenant);
    if (auth) headers.push(['Authorization', auth]);
    if (rng.chance(0.15)) headers.push(['Idempotency-Key', rng.pick(['k-1', `k-${rng.int(5)}`, '', ' ', 'ü', LONG(300)])]);
    if (rng.chance(0.05)) headers.push(['Last-Event-ID', rng.pick(['1', 'x', LONG(2000)])]);
    if (rng.chance(0.05)) headers.push(['X-Request-Id', LONG(rng.pick([10, 500]))]);
    if (rng.chance(0.04)) headers.push(['X-Fuzz', LONG(20_000)]); // over Node's 16 KiB of headers: 431
    if (rng.chance(0.05)) {
      headers.push(['Connection', 'Upgrade'], ['Upgrade', 'websocket'], ['Sec-WebSocket-Version', rng.pick(['13', '99'])]);
      headers.push(['Sec-WebSocket-Key', rng.pick(['dGhlIHNhbXBsZSBub25jZQ==', 'bad', ''])]);
    } else {
      headers.push(['Connection', 'close']);
    }

    const shaped = method === 'POST' && rng.chance(0.5) ? this.shapedJson(rng, op.path) : null;
    const { contentType, body, kind } = shaped ?? this.body(rng, isUpload, method);
    if (contentType !== undefined) headers.push(['Content-Type', contentType]);

    // Transport: mostly well-formed HTTP; sometimes cut, stalled, lying about its length, smuggling, or not HTTP.
    const transport = rng.chance(0.8) ? 'plain' : rng.pick(['cut', 'stall', 'short-length', 'chunked-bad', 'smuggle', 'not-http', 'pipelined', 'slow'] as const);
    const head = (extra: [string, string][] = []) =>
      Buffer.from(`${method} ${target} HTTP/1.1\r\n${[...headers, ...extra].map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n\r\n`, 'latin1');
    const length = (n: number): [string, string] => ['Content-Length', String(n)];
    const what = `#${index} ${transport} ${method} ${target.slice(0, 120)} ${kind} ${contentType ?? '-'} auth=${auth ? auth.slice(0, 20) : '-'}`;
    // Whether the request sent could create an upload: the method actually sent (a GET /uploads case may
    // be sent as POST, with a multipart body that is accepted).
    const base = { what, cut: false, stall: false, isUpload: method === 'POST' && UPLOAD_PATHS.includes(op.path) };
    switch (transport) {
      case 'plain':
        return { ...base, chunks: [head(body.length > 0 || method === 'POST' ? [length(body.length)] : []), body] };
      case 'slow':
        return { ...base, chunks: [head([length(body.length)]), body.subarray(0, body.length >> 1), body.subarray(body.length >> 1)], pauseMs: 50 };
      case 'cut':
        return { ...base, cut: true, chunks: [head([length(body.length + 1000)]), body.subarray(0, rng.int(body.length + 1))] };
      case 'stall':
        return { ...base, stall: true, chunks: [head([length(body.length + 100)]), body] };
      case 'short-length':
        return { ...base, chunks: [head([length(Math.max(0, body.length - 10))]), body] };
      case 'chunked-bad':
        return { ...base, chunks: [head([['Transfer-Encoding', 'chunked']]), Buffer.from(rng.pick(['zz\r\nabc\r\n0\r\n\r\n', '5\r\nabc\r\n0\r\n\r\n', '-1\r\n\r\n', 'ffffffffffffffff\r\n']))] };
      case 'smuggle':
        return { ...base, chunks: [head([length(body.length), ['Transfer-Encoding', 'chunked']]), body] };
      case 'not-http':
        return { ...base, chunks: [rng.pick([rng.bytes(64), Buffer.from('GET / HTTP/9.9\r\n\r\n'), Buffer.from(`FOO ${target} HTTP/1.1\r\nHost: x\r\n\r\n`), Buffer.from('GET /healthz HTTP/1.1\r\nBad Header\r\n\r\n'), Buffer.from('GET /healthz HTTP/1.1\r\n\r\n')])] };
      case 'pipelined': {
        const first = Buffer.from(`GET /uploads/stats HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${this.f.keys[tenant]}\r\n\r\n`);
        return { ...base, chunks: [Buffer.concat([first, head([length(body.length)]), body])] };
      }
    }
  }

  private target(rng: Rng, op: Operation, tenant: number): string {
    const ids = this.f.uploadIds;
    const id = () =>
      rng.pick([
        rng.pick(ids[tenant]!),
        rng.pick(ids[(tenant + 1) % ids.length]!), // another tenant's: 404
        uuidFrom(rng), // no such upload
        rng.pick(ids[tenant]!).toUpperCase(),
        'not-a-uuid',
        encodeURIComponent(rng.pick(ODD_STRINGS)),
        '%zz',
        LONG(rng.pick([200, 5000])),
      ]);
    let p = op.path.replace(/\{[^}]+\}/g, () => id());
    if (rng.chance(0.05)) p = rng.pick([`${p}/`, `/${p}`, p.toUpperCase(), `${p}%`, `${p}/%c0%af`, `${p}/..`, `${p}?`]);
    const query: string[] = [];
    for (const param of op.parameters ?? []) {
      if (param.in !== 'query' || !rng.chance(0.25)) continue;
      query.push(`${param.name}=${encodeURIComponent(this.value(rng, param.schema ?? {}, param.name))}`);
      if (rng.chance(0.1)) query.push(`${param.name}=${encodeURIComponent(this.value(rng, param.schema ?? {}, param.name))}`);
    }
    if (rng.chance(0.1)) query.push(rng.pick(['__proto__[x]=1', 'constructor[prototype][x]=1', `x=${LONG(3000)}`, '%zz=1', '=', '&&&']));
    return query.length > 0 ? `${p}?${query.join('&')}` : p;
  }

  /** A value for a parameter: valid for its schema, at or beyond its bounds, or an odd string. */
  private value(rng: Rng, schema: Record<string, unknown>, name: string): string {
    if (name === 'token' && rng.chance(0.5)) return this.f.token;
    const enumValues = (schema.anyOf as { enum?: string[] }[] | undefined)?.flatMap((s) => s.enum ?? []);
    if (enumValues && rng.chance(0.5)) return rng.pick(enumValues);
    if ((schema.type === 'integer' || schema.type === 'number') && rng.chance(0.6)) {
      const min = Number(schema.minimum ?? 0);
      const max = Number(schema.maximum ?? 1000);
      return String(rng.pick([min, max, min - 1, max + 1, Math.floor((min + max) / 2), Number.MAX_SAFE_INTEGER, 2 ** 64, -0.5]));
    }
    return rng.pick(ODD_STRINGS);
  }

  private authorization(rng: Rng, tenant: number): string | undefined {
    const roll = rng.int(20);
    if (roll < 13) return `Bearer ${this.f.keys[tenant]}`;
    if (roll < 16) return undefined;
    return rng.pick(['Bearer', 'Bearer ', 'Bearer sapi_wrong', `Bearer ${this.f.keys[tenant]} extra`, 'Basic dXNlcjpwYXNz', `Bearer ${LONG(5000)}`, `bearer ${this.f.keys[tenant]}`]);
  }

  private body(rng: Rng, isUpload: boolean, method: string): { contentType: string | undefined; body: Buffer; kind: string } {
    if ((method === 'GET' || method === 'OPTIONS') && rng.chance(0.8)) return { contentType: undefined, body: Buffer.alloc(0), kind: 'none' };
    if (isUpload && rng.chance(0.7)) return this.multipart(rng);
    const kind = rng.pick(['none', 'json', 'bad-json', 'proto-json', 'big-json', 'text', 'bytes', 'multipart'] as const);
    switch (kind) {
      case 'none':
        return { contentType: rng.pick(CONTENT_TYPES), body: Buffer.alloc(0), kind };
      case 'json':
        return { contentType: 'application/json', body: Buffer.from(rng.pick(['{}', '{"a":1}', '[]', 'null', '"x"', '{"limit":5}'])), kind };
      case 'bad-json':
        return { contentType: 'application/json', body: Buffer.from(rng.pick(['{', '{"a":', '\u0000', '{"a":1}}', 'tru'])), kind };
      case 'proto-json':
        return { contentType: 'application/json', body: Buffer.from(rng.pick(['{"__proto__":{"x":1}}', '{"constructor":{"prototype":{"x":1}}}'])), kind };
      case 'big-json':
        return { contentType: 'application/json', body: Buffer.from(`{"a":"${LONG(1024 * 1024 + 10)}"}`), kind };
      case 'text':
        return { contentType: rng.pick(CONTENT_TYPES), body: Buffer.from(rng.pick(['hello', this.f.csv, LONG(5000)])), kind };
      case 'bytes':
        return { contentType: rng.pick(CONTENT_TYPES), body: rng.bytes(rng.int(2048)), kind };
      case 'multipart':
        return this.multipart(rng);
    }
  }

  /**
   * A JSON body for the direct-upload routes: valid, or wrong in one field (type, bound, odd string),
   * so the checks behind the schema (sizes, options, part lists, the store) are reached too.
   */
  private shapedJson(rng: Rng, path: string): { contentType: string; body: Buffer; kind: string } | null {
    const odd = () => rng.pick<unknown>([...ODD_STRINGS.slice(0, 19), -1, 0, 1.5, 2 ** 64, null, [], {}]);
    const field = <T>(valid: T) => (rng.chance(0.8) ? valid : odd());
    let value: Record<string, unknown>;
    if (path === DIRECT_START_PATH) {
      value = {
        filename: field(rng.pick(['a.csv', 'ü.csv', LONG(300)])),
        size: field(rng.pick([1, 100, 5 * 1024 * 1024 + 1, 2 ** 40, Number.MAX_SAFE_INTEGER])),
      };
      for (const [name, valid] of [['dataset', 'webhook_events'], ['callbackUrl', 'https://example.com/h'], ['callbackChannel', 'slack'], ['maxErrors', 5], ['maxErrorRatio', 0.5]] as const) {
        if (rng.chance(0.3)) value[name] = field(valid);
      }
    } else if (path === DIRECT_COMPLETE_PATH) {
      const count = rng.pick([0, 1, 3, 10_001]);
      const parts = Array.from({ length: count }, (_, i) => ({ partNumber: field(i + 1), etag: field(`"${'0'.repeat(32)}"`) }));
      value = { parts: rng.chance(0.9) ? parts : odd() };
    } else {
      return null;
    }
    return { contentType: 'application/json', body: Buffer.from(JSON.stringify(value)), kind: `json:${path}` };
  }

  /** A multipart body: well-formed, or broken in one of the ways a parser has to survive. */
  private multipart(rng: Rng): { contentType: string; body: Buffer; kind: string } {
    const boundary = rng.chance(0.9) ? `fuzz${rng.int(1e9)}` : rng.pick(['a', LONG(70), 'with space', '"quoted"']);
    const field = (name: string, value: string, extra = '') =>
      `--${boundary}\r\nContent-Disposition: form-data; name="${name}"${extra}\r\n\r\n${value}\r\n`;
    const file = (content: string | Buffer, name = 'file', filename = 'data.csv') =>
      Buffer.concat([Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"; filename="${filename}"\r\nContent-Type: text/csv\r\n\r\n`), Buffer.from(content), Buffer.from('\r\n')]);
    const close = Buffer.from(`--${boundary}--\r\n`);
    const variant = rng.pick(['valid', 'options', 'no-file', 'two-files', 'many-fields', 'long-field', 'long-filename', 'no-disposition', 'bad-header', 'cut', 'no-close', 'wrong-boundary', 'png', 'nul', 'proto-field', 'empty', 'huge-part-header'] as const);
    const opts = ['dataset', 'callbackUrl', 'callbackChannel', 'maxErrors', 'maxErrorRatio'];
    let parts: Buffer[];
    switch (variant) {
      case 'valid': parts = [file(this.f.csv), close]; break;
      case 'options': parts = [Buffer.from(opts.filter(() => rng.chance(0.5)).map((o) => field(o, rng.pick(ODD_STRINGS.slice(0, 19)))).join('')), file(this.f.csv), close]; break;
      case 'no-file': parts = [Buffer.from(field('dataset', 'webhook_events')), close]; break;
      case 'two-files': parts = [file(this.f.csv), file(this.f.csv, 'file', 'b.csv'), file('x', 'other'), close]; break;
      case 'many-fields': parts = [Buffer.from(Array.from({ length: 25 }, (_, i) => field(`f${i}`, 'v')).join('')), file(this.f.csv), close]; break;
      case 'long-field': parts = [Buffer.from(field(rng.pick(opts), LONG(5000))), file(this.f.csv), close]; break;
      case 'long-filename': parts = [file(this.f.csv, 'file', LONG(10_000)), close]; break;
      case 'no-disposition': parts = [Buffer.from(`--${boundary}\r\nContent-Type: text/csv\r\n\r\nabc\r\n`), close]; break;
      case 'bad-header': parts = [Buffer.from(`--${boundary}\r\nthis is not a header\r\n\r\nabc\r\n`), file(this.f.csv), close]; break;
      case 'cut': parts = [file(this.f.csv).subarray(0, rng.int(120))]; break;
      case 'no-close': parts = [file(this.f.csv)]; break;
      case 'wrong-boundary': parts = [file(this.f.csv), Buffer.from('--other--\r\n')]; break;
      case 'png': parts = [file(Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(1500, 1)])), close]; break;
      case 'nul': parts = [file('a,b\n1,\u0000\n'), close]; break;
      case 'proto-field': parts = [Buffer.from(field('__proto__', 'x') + field('constructor', 'y')), file(this.f.csv), close]; break;
      case 'empty': parts = []; break;
      case 'huge-part-header': parts = [Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\nX-Pad: ${LONG(90 * 1024)}\r\n\r\nabc\r\n`), close]; break;
    }
    const quoted = boundary.includes(' ') || boundary.startsWith('"') ? `"${boundary.replaceAll('"', '')}"` : boundary;
    return { contentType: `multipart/form-data; boundary=${quoted}`, body: Buffer.concat(parts), kind: `multipart:${variant}` };
  }
}
