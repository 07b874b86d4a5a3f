// Receiving an upload: multipart file part → (hash, count, sniff) → object store, then one
// transaction records the upload and enqueues its job. Nothing touches local disk.
import { randomUUID, createHash } from 'node:crypto';
import { pipeline, Writable, type Readable } from 'node:stream';
import type { Multipart, MultipartFile } from '@fastify/multipart';
import type { Kysely } from 'kysely';
import type { DB } from '../db/schema.ts';
import { AppError } from '../errors.ts';
import { findDataset } from '../datasets/datasets.repository.ts';
import { identifierProblem } from '../datasets/identifiers.ts';
import { getDataset } from '../ingest/datasets/index.ts';
import { checkUrl, type AddressList, type UrlRejection } from '../notify/ssrf.ts';
import { objectKeyFor, type ObjectStore } from '../storage/object-store.ts';
import { InspectStream } from './inspect.ts';
import { asMultipartError } from './multipart-errors.ts';
import { claimIdempotencyKey, findIdempotentResponse, type StoredResponse } from './idempotency.repository.ts';
import { insertUploadWithJob } from './uploads.repository.ts';

export interface ReceiveDeps {
  db: Kysely<DB>;
  store: ObjectStore;
  jobMaxAttempts: number;
  /** WEBHOOK_ALLOWED_CIDRS: private ranges a callback may target */
  allowedCidrs: AddressList;
}

export interface ReceiveRequest {
  tenantId: string;
  parts: AsyncIterable<Multipart>;
  query: Record<string, unknown>;
  idempotencyKey: string | undefined;
  log: { info(obj: object, msg: string): void };
}

export interface UploadAccepted {
  uploadId: string;
  status: 'uploaded';
  statusUrl: string;
}

/** How a load treats the dataset's rows (issue 10): append (default), upsert by the key, or replace them all. */
export type LoadMode = 'append' | 'upsert' | 'replace';
export const LOAD_MODES: readonly LoadMode[] = ['append', 'upsert', 'replace'];

interface UploadOptions {
  dataset: string;
  mode: LoadMode;
  /** validate in full, load nothing (Google AIP-163 validate_only) */
  dryRun: boolean;
  callbackUrl: string | null;
  callbackChannel: 'webhook' | 'slack';
  maxErrors: number | null;
  maxErrorRatio: number | null;
}

class KeyTaken extends Error {}

/** An Idempotency-Key: 1–255 printable ASCII characters. */
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

export const OPTION_FIELDS = ['dataset', 'mode', 'dryRun', 'callbackUrl', 'callbackChannel', 'maxErrors', 'maxErrorRatio'] as const;

/**
 * Receives one multipart upload: checks the options (query first, then form fields before the file),
 * streams the `file` part through the CSV sniff and hash into object storage, then records the upload
 * and enqueues its job in one transaction. With an `Idempotency-Key` already used, nothing is stored
 * and the first answer is replayed (`replayed: true`). Throws AppError for the client's mistakes — a
 * malformed or cut body (`malformed_multipart`, `upload_aborted`), bad options, a reused key — and
 * `storage_unavailable` when the store fails; whatever it throws, nothing stays stored.
 */
export async function receiveUpload(deps: ReceiveDeps, req: ReceiveRequest): Promise<{ replayed: boolean; body: UploadAccepted }> {
  checkIdempotencyKey(req.idempotencyKey);
  const raw: Record<string, string> = {};
  for (const name of OPTION_FIELDS) {
    // the route's schema has typed (and checked) the query; form fields arrive as text, so both go on as text
    const value = req.query[name];
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') raw[name] = String(value);
  }
  parseOptions(raw, deps.allowedCidrs); // fail fast on bad query parameters, before reading the file

  const uploadId = randomUUID();
  const objectKey = objectKeyFor(req.tenantId, uploadId);
  let file: { filename: string; bytes: number; sha256: string } | null = null;
  let stored = false;
  const previous = req.idempotencyKey
    ? await findIdempotentResponse(deps.db, req.tenantId, req.idempotencyKey)
    : undefined;

  try {
    for await (const part of req.parts) {
      if (part.type === 'field') {
        if (!(OPTION_FIELDS as readonly string[]).includes(part.fieldname)) continue;
        // busboy cuts a field at the fieldSize limit and says so: a cut value must not pass as the whole
        if (part.valueTruncated) throw new AppError('validation_failed', `field ${part.fieldname} is too long`);
        raw[part.fieldname] = String(part.value);
        continue;
      }
      if (part.fieldname !== 'file' || file) {
        part.file.resume(); // not ours: drain it so the parser moves on
        continue;
      }
      // options sent before the file are checked before storing anything
      await assertDatasetDefined(deps.db, req.tenantId, parseOptions(raw, deps.allowedCidrs));
      const inspect = new InspectStream(() => part.file.truncated);
      const body = pipeline(part.file, inspect, () => {});
      if (previous) {
        await drain(body); // a replay stores nothing: hash only, to compare with the first request
      } else {
        await storeFile(deps.store, objectKey, body);
        stored = true;
      }
      file = { filename: safeFilename(part), bytes: inspect.bytes, sha256: inspect.sha256 };
    }
    if (!file) throw new AppError('missing_file');
    const options = parseOptions(raw, deps.allowedCidrs);
    const requestHash = hashRequest(file, options);

    if (previous) return replay(previous, requestHash);

    const accepted: UploadAccepted = { uploadId, status: 'uploaded', statusUrl: `/uploads/${uploadId}` };
    const record = uploadRecord(req.tenantId, uploadId, objectKey, file, options);
    const key = req.idempotencyKey;
    try {
      await deps.db.transaction().execute(async (trx) => {
        await insertUploadWithJob(trx, record, deps.jobMaxAttempts);
        const claim = { tenantId: req.tenantId, key: key ?? '', requestHash, uploadId, response: accepted };
        if (key && !(await claimIdempotencyKey(trx, claim))) throw new KeyTaken();
      });
    } catch (err) {
      if (!(err instanceof KeyTaken)) throw err;
      // A concurrent request with the same key committed first: this one stores nothing.
      const winner = await findIdempotentResponse(deps.db, req.tenantId, key!);
      if (!winner) throw new Error('idempotency key conflict without a stored response', { cause: err });
      await deps.store.delete(objectKey).catch(() => {});
      stored = false;
      return replay(winner, requestHash);
    }
    req.log.info({ uploadId, bytes: file.bytes, dataset: options.dataset }, 'upload stored and queued');
    return { replayed: false, body: accepted };
  } catch (err) {
    if (stored) await deps.store.delete(objectKey).catch(() => {});
    throw asMultipartError(err); // a malformed or cut body is the client's: 400 with its code
  }
}

/**
 * A tenant's own dataset must be defined (a built-in one always is), and have a key for mode=upsert:
 * unknown_dataset or dataset_has_no_key before any byte is stored. (insertUploadWithJob checks again,
 * under the definition's share lock, for every way of uploading.)
 */
export async function assertDatasetDefined(db: Kysely<DB>, tenantId: string, options: Pick<UploadOptions, 'dataset' | 'mode'>): Promise<void> {
  if (getDataset(options.dataset)) return;
  const found = await findDataset(db, tenantId, options.dataset);
  if (!found) throw new AppError('unknown_dataset', `unknown dataset "${options.dataset}": define it with POST /datasets`);
  assertModeFits(options.mode, options.dataset, (found.definition as { key?: string[] }).key);
}

/** dataset_has_no_key when mode=upsert names a dataset defined without a key. */
export function assertModeFits(mode: LoadMode, dataset: string, key: readonly string[] | undefined): void {
  if (mode === 'upsert' && !key?.length) throw new AppError('dataset_has_no_key', `dataset "${dataset}" has no key, so rows cannot be matched for mode=upsert; add one with PUT /datasets/${dataset}`);
}

/** Stores the stream; a failure of the store itself (not of the client's stream) is a 503. */
async function storeFile(store: ObjectStore, key: string, body: Readable): Promise<void> {
  let sourceError: unknown = null;
  body.once('error', (err) => (sourceError ??= err));
  try {
    await store.putStream(key, body);
  } catch (err) {
    if (sourceError) throw sourceError;
    if (err instanceof AppError) throw err;
    throw new AppError('storage_unavailable', undefined, { cause: err });
  }
}

/** The first answer to an Idempotency-Key, or 422 idempotency_key_reused when this request differs from it. */
export function replay(previous: StoredResponse, requestHash: string): { replayed: boolean; body: UploadAccepted } {
  if (previous.requestHash !== requestHash) throw new AppError('idempotency_key_reused');
  return { replayed: true, body: previous.response as UploadAccepted };
}

/** The uploads row of an upload received whole (multipart or tus): who, where, what, and its options. */
export function uploadRecord(
  tenantId: string,
  id: string,
  objectKey: string,
  file: { filename: string; bytes: number; sha256: string },
  options: UploadOptions,
) {
  return {
    id,
    tenantId,
    objectKey,
    dataset: options.dataset,
    mode: options.mode,
    dryRun: options.dryRun,
    filename: file.filename,
    sizeBytes: file.bytes,
    sha256: file.sha256,
    callbackUrl: options.callbackUrl,
    callbackChannel: options.callbackChannel,
    maxErrors: options.maxErrors,
    maxErrorRatio: options.maxErrorRatio,
  };
}

const CALLBACK_PROBLEMS: Record<UrlRejection, string> = {
  invalid_url: 'is not a valid absolute URL',
  too_long: 'is longer than 2048 characters',
  unsupported_scheme: 'must use http or https',
  credentials: 'must not contain a user name or password',
  missing_host: 'has no host',
  forbidden_address: 'points at a private, loopback or link-local address',
};

export function parseOptions(raw: Record<string, string>, allowedCidrs?: AddressList): UploadOptions {
  const dataset = raw.dataset?.trim() || 'webhook_events';
  // A built-in dataset, or the name of one of the tenant's own (checked when the upload is recorded).
  if (!getDataset(dataset) && identifierProblem(dataset)) throw new AppError('unknown_dataset', `unknown dataset "${dataset}"`);

  const mode = (raw.mode?.trim() || 'append') as LoadMode;
  if (!LOAD_MODES.includes(mode)) throw new AppError('invalid_mode', `mode ${JSON.stringify(raw.mode!.slice(0, 40))} is not one of ${LOAD_MODES.join(', ')}`);
  // webhook_events is one table for every tenant, without a tenant column: an upsert by event_id could
  // overwrite another tenant's row, and a replace would delete every tenant's rows. Append only.
  if (getDataset(dataset) && mode !== 'append') throw new AppError('mode_not_supported', `dataset "${dataset}" is built in and loaded with mode=append only`);

  const dryRun = parseDryRun(raw.dryRun);

  let callbackUrl: string | null = null;
  if (raw.callbackUrl !== undefined && raw.callbackUrl.trim() !== '') {
    const checked = checkUrl(raw.callbackUrl.trim(), allowedCidrs);
    if (!checked.ok) throw new AppError('invalid_callback_url', `callbackUrl ${CALLBACK_PROBLEMS[checked.reason]}`);
    callbackUrl = checked.url.href;
  }

  const callbackChannel = raw.callbackChannel?.trim() || 'webhook';
  if (callbackChannel !== 'webhook' && callbackChannel !== 'slack') {
    throw new AppError('validation_failed', 'callbackChannel must be webhook or slack');
  }

  let maxErrors: number | null = null;
  if (raw.maxErrors !== undefined && raw.maxErrors !== '') {
    maxErrors = Number(raw.maxErrors);
    if (!Number.isSafeInteger(maxErrors) || maxErrors < 0) {
      throw new AppError('validation_failed', 'maxErrors must be a non-negative integer');
    }
  }
  let maxErrorRatio: number | null = null;
  if (raw.maxErrorRatio !== undefined && raw.maxErrorRatio !== '') {
    maxErrorRatio = Number(raw.maxErrorRatio);
    if (!Number.isFinite(maxErrorRatio) || maxErrorRatio < 0 || maxErrorRatio > 1) {
      throw new AppError('validation_failed', 'maxErrorRatio must be a number between 0 and 1');
    }
  }
  return { dataset, mode, dryRun, callbackUrl, callbackChannel, maxErrors, maxErrorRatio };
}

/** `dryRun`: true or false (absent or empty: false); anything else is 400 validation_failed. */
function parseDryRun(value: string | undefined): boolean {
  const text = value?.trim() ?? '';
  if (text === '' || text === 'false') return false;
  if (text === 'true') return true;
  throw new AppError('validation_failed', 'dryRun must be true or false');
}

/** What makes two keyed uploads "the same request": the file's hash, size and name, and the options. */
export function hashRequest(file: { filename: string; sha256: string; bytes: number }, options: UploadOptions): string {
  return createHash('sha256')
    .update(JSON.stringify([file.sha256, file.bytes, file.filename, options]))
    .digest('hex');
}

function safeFilename(part: MultipartFile): string {
  return displayFilename(part.filename);
}

/** A file name for display only (never a path): control characters stripped, at most 255 characters. */
export function displayFilename(raw: string | null | undefined): string {
  const name = (raw || 'upload.csv').replace(/[\x00-\x1f\x7f]/g, '').slice(0, 255);
  return name || 'upload.csv';
}

/** An Idempotency-Key is 1–255 printable ASCII characters; else 400 invalid_idempotency_key. */
export function checkIdempotencyKey(key: string | undefined): void {
  if (key !== undefined && !IDEMPOTENCY_KEY.test(key)) throw new AppError('invalid_idempotency_key');
}

function drain(stream: Readable): Promise<void> {
  return new Promise((resolve, reject) => {
    const sink = new Writable({ write: (_chunk, _enc, cb) => cb() });
    pipeline(stream, sink, (err) => (err ? reject(err) : resolve()));
  });
}
