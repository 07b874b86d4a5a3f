// Presigned URLs checked by the embedded store as S3 checks them. s3rver 3.7.1 never verifies a
// Signature Version 4 signature (lib/middleware/authentication.js: "Signature version 4 calculation is
// unimplemented"): any URL of the right shape is taken, so a client could change the part number, the
// upload or the key of a presigned URL and still be served. This middleware signs the request again
// with the AWS SDK's own presigner and refuses it (403 SignatureDoesNotMatch) unless the signatures
// are equal. Requests signed in the Authorization header (the server's own SDK calls) are left as they are.
import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import { S3RequestPresigner } from '@aws-sdk/s3-request-presigner';
import type { S3rverContext, S3rverMiddleware } from 's3rver';
import S3Error from 's3rver/lib/models/error.js';

/** s3rver's one account (lib/models/account.js: DUMMY_ACCOUNT), which the embedded store serves. */
const ACCESS_KEY_ID = 'S3RVER';
const SECRET_ACCESS_KEY = 'S3RVER';

/** The query parameters the presigner adds itself (SigV4 query authentication, and S3's payload hash). */
const AUTH_PARAMS = ['X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Date', 'X-Amz-Expires', 'X-Amz-SignedHeaders', 'X-Amz-Signature', 'X-Amz-Content-Sha256'];

/** SHA-256 and HMAC-SHA256 from node:crypto in the shape the SDK's signer takes (@smithy/types Checksum). */
class NodeSha256 {
  private hash: Hash | Hmac;
  constructor(private readonly secret?: string | ArrayBuffer | ArrayBufferView) {
    this.hash = this.fresh();
  }
  private fresh(): Hash | Hmac {
    return this.secret === undefined ? createHash('sha256') : createHmac('sha256', bytes(this.secret));
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.hash.update(bytes(data));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.hash.digest());
  }
  reset(): void {
    this.hash = this.fresh();
  }
}

function bytes(data: string | ArrayBuffer | ArrayBufferView): string | Uint8Array {
  if (typeof data === 'string') return data;
  return ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : new Uint8Array(data);
}

/**
 * Verifies the SigV4 query signature of every presigned request (one with `X-Amz-Signature` in its
 * query) before s3rver's router sees it. Expiry and the parameters' presence stay s3rver's checks.
 */
export function verifyPresignedSignatures(): S3rverMiddleware {
  const presigner = new S3RequestPresigner({
    region: 'us-east-1', // replaced per request by the region of the URL's credential scope
    credentials: { accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET_ACCESS_KEY },
    sha256: NodeSha256,
  });
  return async (ctx: S3rverContext, next) => {
    const given = ctx.query['X-Amz-Signature'];
    if (typeof given !== 'string') return next();
    const [accessKeyId, , region, service] = String(ctx.query['X-Amz-Credential'] ?? '').split('/');
    const date = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(String(ctx.query['X-Amz-Date'] ?? ''));
    const expiresIn = Number(ctx.query['X-Amz-Expires']);
    // A URL of another shape is left to s3rver, which refuses it with its own S3 errors.
    if (accessKeyId !== ACCESS_KEY_ID || !region || !service || !date || !Number.isSafeInteger(expiresIn)) return next();

    const query: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(ctx.query)) if (value !== undefined && !AUTH_PARAMS.includes(name)) query[name] = value;
    const signedHeaders = String(ctx.query['X-Amz-SignedHeaders'] ?? '').split(';');
    const headers: Record<string, string> = {};
    for (const name of signedHeaders) {
      const value = name === 'host' ? ctx.host : ctx.headers[name];
      if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(',') : value;
    }
    const [, y, mo, d, h, mi, s] = date.map(Number) as [number, number, number, number, number, number, number];
    const expected = await presigner.presign(
      { method: ctx.method, protocol: 'http:', hostname: ctx.host.replace(/:\d+$/, ''), path: ctx.path, query, headers },
      { signingDate: new Date(Date.UTC(y, mo - 1, d, h, mi, s)), expiresIn, signingRegion: region, signingService: service },
    );
    if (expected.query?.['X-Amz-Signature'] !== given) {
      throw new S3Error('SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided. Check your key and signing method.', {
        AWSAccessKeyId: accessKeyId,
      });
    }
    return next();
  };
}
