// The tus 1.0 server (@tus/server over TusS3Store): who the upload belongs to, how it is named, what
// happens at creation and when the last byte lands. The HTTP wiring is src/http/routes/tus.ts.
import { randomUUID } from 'node:crypto';
import { Server } from '@tus/server';
import type { ServerRequest } from 'srvx';
import type pg from 'pg';
import type { Kysely } from 'kysely';
import type { DB } from '../../db/schema.ts';
import type { Logger } from '../../logger.ts';
import type { AddressList } from '../../notify/ssrf.ts';
import { objectKeyFor, type ObjectStore } from '../../storage/object-store.ts';
import { tusErrorBody, tusPublicError } from './errors.ts';
import { finishTusUpload, type TusUploadRef } from './finish.ts';
import type { KnownDigest } from './hashes.ts';
import { PgAdvisoryLocker } from './locker.ts';
import { assertDatasetDefined, parseOptions } from '../receive.ts';
import { checkCreationMetadata, optionFields, type TusMetadata } from './metadata.ts';
import { TusS3Store } from './store.ts';

/** Who sent a tus request: set by the route for each request before @tus/server sees it. */
export interface TusRequestContext {
  tenantId: string;
  log: Pick<Logger, 'info' | 'warn' | 'error'>;
}

export interface TusServerDeps {
  db: Kysely<DB>;
  store: ObjectStore;
  /** connections for held upload locks (PgAdvisoryLocker) */
  lockPool: pg.Pool;
  logger: Logger;
  /** where the endpoint is mounted, e.g. `/files` */
  path: string;
  /** PUBLIC_URL: the base of the upload URLs handed out (else the request's Host) */
  publicUrl: string | null;
  maxUploadBytes: number;
  expiryMs: number;
  jobMaxAttempts: number;
  allowedCidrs: AddressList;
}

export interface TusEndpoint {
  server: Server;
  /** the context of a request, by the request object handed to `server.handleWeb` */
  contexts: WeakMap<object, TusRequestContext>;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const OBJECT_KEY = /^uploads\/([^/]+)\/([0-9a-f-]{36})\.csv$/;

/** The tenant and upload id of a store id (the object key, objectKeyFor), or null. */
export function parseTusId(id: string): TusUploadRef | null {
  const match = OBJECT_KEY.exec(id);
  return match ? { tenantId: match[1]!, uploadId: match[2]!, objectKey: id } : null;
}

/**
 * The tus server. An upload's id in the store is its object key (`uploads/<tenant>/<uuid>.csv`), its
 * URL names only the uuid, which is also the id of the upload resource once complete
 * (`/uploads/<uuid>`). A request resolves the URL's uuid under its own tenant: another tenant's
 * upload is a key that does not exist, so 404, with no lookup to forget.
 */
export function createTusEndpoint(deps: TusServerDeps): TusEndpoint {
  const contexts = new WeakMap<object, TusRequestContext>();
  const contextOf = (req: ServerRequest): TusRequestContext => {
    const context = contexts.get(req);
    if (!context) throw new Error('tus request without a tenant context');
    return context;
  };
  const finish = (ref: TusUploadRef, metadata: TusMetadata | undefined, log: TusRequestContext['log'], digest?: KnownDigest | null) =>
    finishTusUpload({ db: deps.db, store: deps.store, jobMaxAttempts: deps.jobMaxAttempts, allowedCidrs: deps.allowedCidrs, log }, ref, metadata, digest);

  const store: TusS3Store = new TusS3Store({
    s3: deps.store.options,
    expiryMs: deps.expiryMs,
    settle: async (id) => {
      const ref = parseTusId(id);
      if (!ref) return false;
      return (await finish(ref, await store.metadataOf(id), deps.logger)) !== null;
    },
  });

  const server = new Server({
    path: deps.path,
    datastore: store,
    locker: new PgAdvisoryLocker(deps.lockPool),
    maxSize: deps.maxUploadBytes,
    // No CORS headers, as on every other route (the dashboard is served from the same origin).
    allowedOrigins: [],
    exposedHeaders: ['Upload-Id', 'Upload-Status-Url'],
    // Once complete the upload is an upload resource: DELETE /uploads/:id removes it.
    disableTerminationForFinishedUploads: true,
    namingFunction: (req) => objectKeyFor(contextOf(req).tenantId, randomUUID()),
    getFileIdFromRequest: (req, lastPath) =>
      lastPath !== undefined && UUID.test(lastPath) ? objectKeyFor(contextOf(req).tenantId, lastPath) : undefined,
    generateUrl: (_req, { proto, host, path, id }) => `${deps.publicUrl?.replace(/\/$/, '') ?? `${proto}://${host}`}${path}/${parseTusId(id)?.uploadId ?? ''}`,
    onUploadCreate: async (req, upload) => {
      const metadata = checkCreationMetadata(upload.metadata, req.headers.get('idempotency-key'), deps.allowedCidrs);
      // before any byte is sent: an unknown dataset, or mode=upsert without a key, is refused at creation
      await assertDatasetDefined(deps.db, contextOf(req).tenantId, parseOptions(optionFields(metadata), deps.allowedCidrs));
      return { metadata };
    },
    onUploadFinish: async (req, upload) => {
      const ref = parseTusId(upload.id);
      const finished = ref && (await finish(ref, upload.metadata, contextOf(req).log, store.takeDigest(upload.id, upload.size)));
      if (!finished) throw new Error(`tus upload ${upload.id} finished but its object is missing`);
      return {
        headers: {
          'Upload-Id': finished.body.uploadId,
          'Upload-Status-Url': finished.body.statusUrl,
          ...(finished.replayed ? { 'Idempotent-Replayed': 'true' } : {}),
        },
      };
    },
    onResponseError: (req, err) => {
      const error = tusPublicError(err);
      const log = contexts.get(req)?.log ?? deps.logger;
      if (error.status >= 500) log.error({ err }, 'tus request failed');
      else log.info({ code: error.code, status: error.status }, 'tus request rejected');
      return { status_code: error.status, body: tusErrorBody(error) };
    },
  });
  return { server, contexts };
}
