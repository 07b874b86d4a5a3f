declare module 's3rver' {
  import type { AddressInfo } from 'node:net';
  import type { RequestListener } from 'node:http';
  interface S3rverOptions {
    address?: string;
    port?: number;
    silent?: boolean;
    directory?: string;
    resetOnClose?: boolean;
    allowMismatchedSignatures?: boolean;
    vhostBuckets?: boolean;
    configureBuckets?: { name: string; configs?: (string | Buffer)[] }[];
  }
  /** The slice of Koa's context the embedded wrapper's middleware uses. */
  export interface S3rverContext {
    method: string;
    /** the request's Host header (name and port) */
    host: string;
    /** request headers, names in lower case */
    headers: Record<string, string | string[] | undefined>;
    /** the path as sent (percent-encoded) */
    path: string;
    query: Record<string, string | string[] | undefined>;
    status: number;
    body: unknown;
  }
  export type S3rverMiddleware = ((ctx: S3rverContext, next: () => Promise<void>) => Promise<void>) & {
    /** set on @koa/router's dispatch middleware */
    router?: unknown;
  };
  /** s3rver 3.7.1 is a Koa application (lib/s3rver.js) over a FilesystemStore (lib/stores/filesystem.js). */
  export default class S3rver {
    constructor(options?: S3rverOptions);
    /** Koa's middleware stack, composed when the server starts listening */
    middleware: S3rverMiddleware[];
    store: {
      /** `<root>/<bucket>/<key dirs>/<last>._S3rver_<resource>`; multipart parts live under resource `uploads` */
      getResourcePath(bucket: string, key: string | undefined, resource: string): string;
      /** UploadPart: stores `content` as `<uploads>/<uploadId>/<partNumber>` (+ `.md5`, its hex MD5, the ETag) */
      putPart(bucket: string, uploadId: string, partNumber: string | number, content: import('node:stream').Readable): Promise<{ size: number; md5: string }>;
      /** CompleteMultipartUpload: concatenates the parts (ETags unquoted), sorted by number, into the object */
      putObjectMultipart(bucket: string, uploadId: string, parts: { number: number; etag: string }[]): Promise<{ md5: string; size: number }>;
    };
    /** creates the `configureBuckets` buckets */
    configureBuckets(): Promise<void>;
    /** Koa's request handler for node:http */
    callback(): RequestListener;
    run(): Promise<AddressInfo>;
    close(): Promise<void>;
  }
}

declare module 's3rver/lib/models/error.js' {
  /** s3rver's S3 error: `code` is the S3 error code, `status` its HTTP status; rendered as S3's XML. */
  export default class S3Error extends Error {
    constructor(code: string, message?: string, detail?: Record<string, string>);
    code: string;
    status: number;
  }
}
