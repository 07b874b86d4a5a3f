// tus 1.0 requests over real sockets (node:http), for the tests that need to control the bytes on the
// wire: cut a PATCH midway, hold one open, send malformed headers. tus-js-client is the client elsewhere.
import http from 'node:http';

export interface TusResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  /** the parsed `{ error: { code, message } }`, when the body is one */
  error?: { code: string; message: string };
}

/** `Upload-Metadata`: keys with base64 values (tus 1.0 creation). */
export function tusMetadata(fields: Record<string, string>): string {
  return Object.entries(fields)
    .map(([k, v]) => `${k} ${Buffer.from(v).toString('base64')}`)
    .join(',');
}

/**
 * One request: `body` is sent whole, or — with `cutAfterBytes` — only that many bytes, then the socket
 * is destroyed (the client vanished mid-upload; the promise resolves with status 0). `holdOpen`: after
 * writing `body`, the request stays open (a stalled client) until `release()` is called.
 */
export function tusRequest(
  baseUrl: string,
  key: string | null,
  method: string,
  path: string,
  opts: { headers?: Record<string, string>; body?: Buffer; cutAfterBytes?: number } = {},
): Promise<TusResponse> {
  return new Promise((resolve, reject) => {
    const body = opts.body ?? Buffer.alloc(0);
    const headers: Record<string, string> = { 'Tus-Resumable': '1.0.0', ...opts.headers };
    if (key) headers.Authorization = `Bearer ${key}`;
    if (body.length > 0 || method === 'PATCH' || method === 'POST') headers['Content-Length'] = String(body.length);
    const req = http.request(new URL(path, baseUrl), { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let error: TusResponse['error'];
        try {
          error = (JSON.parse(text) as { error?: TusResponse['error'] }).error;
        } catch {
          error = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, error });
      });
      res.on('error', reject);
    });
    if (opts.cutAfterBytes !== undefined) {
      req.on('error', () => resolve({ status: 0, headers: {}, text: '' }));
      writeSlowly(req, body.subarray(0, opts.cutAfterBytes)).then(
        // Let the bytes leave before the cut: what the server read is what it keeps.
        () => setTimeout(() => req.destroy(), 200),
        () => {},
      );
      return;
    }
    req.on('error', reject);
    req.end(body);
  });
}

/** Writes `data` in 64 KiB pieces, waiting for drain: the bytes really go out before the caller cuts. */
async function writeSlowly(req: http.ClientRequest, data: Buffer): Promise<void> {
  for (let at = 0; at < data.length; at += 64 * 1024) {
    if (!req.write(data.subarray(at, at + 64 * 1024))) await new Promise((r) => req.once('drain', r));
  }
}

/** POST /files with Upload-Length: the new upload's path (`/files/<id>`) and the response. */
export async function tusCreate(baseUrl: string, key: string, length: number, metadata: Record<string, string> = {}) {
  const res = await tusRequest(baseUrl, key, 'POST', '/files', {
    headers: { 'Upload-Length': String(length), 'Upload-Metadata': tusMetadata({ filename: 'data.csv', ...metadata }) },
  });
  if (res.status !== 201) throw new Error(`tus creation: ${res.status} ${res.text}`);
  return { path: new URL(String(res.headers.location)).pathname, res };
}

export function tusPatch(baseUrl: string, key: string, path: string, offset: number, body: Buffer, cutAfterBytes?: number) {
  return tusRequest(baseUrl, key, 'PATCH', path, {
    headers: { 'Upload-Offset': String(offset), 'Content-Type': 'application/offset+octet-stream' },
    body,
    ...(cutAfterBytes !== undefined ? { cutAfterBytes } : {}),
  });
}

/** HEAD: the upload's offset (Upload-Offset), or the failed response. */
export async function tusOffset(baseUrl: string, key: string, path: string): Promise<number> {
  const res = await tusRequest(baseUrl, key, 'HEAD', path);
  if (res.status !== 200) throw new Error(`tus HEAD: ${res.status}`);
  return Number(res.headers['upload-offset']);
}
