// POST /datasets/infer — a proposed dataset definition for a CSV file, inferred from its first bytes
// (src/datasets/infer.ts): sent as the body (text/csv or application/octet-stream; gzip is decompressed),
// or a stored upload's object named by `{ "uploadId": … }` (tenant-scoped: another tenant's is a 404).
// Only the first SAMPLE_BYTES are judged: a longer body is read to its end and cut, not refused, up to
// MAX_BODY_BYTES (413 beyond). Nothing is stored.
import type { Readable } from 'node:stream';
import { constants as zlib, createGunzip } from 'node:zlib';
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { DatasetBody } from '../../datasets/definition.ts';
import { InferError, inferDataset } from '../../datasets/infer.ts';
import { AppError } from '../../errors.ts';
import { isGzip } from '../../ingest/decompress.ts';
import { findUpload } from '../../uploads/uploads.repository.ts';
import type { RouteDeps } from '../app.ts';
import { errors } from '../schemas.ts';

/** Bytes of a file the inference reads (after decompression). */
export const SAMPLE_BYTES = 1024 * 1024;
/** A larger body is refused (413 body_too_large); up to it, what is past SAMPLE_BYTES is read and dropped. */
export const MAX_BODY_BYTES = 16 * 1024 * 1024;

const SAMPLE_TYPES = ['text/csv', 'text/plain', 'application/octet-stream'];

/** What the sample parser makes of a text/csv or octet-stream body. */
interface SampleBody {
  sample: Buffer;
  /** the body was the whole file: at most SAMPLE_BYTES */
  complete: boolean;
  /** the stored upload's file name, when the sample is one's */
  filename?: string;
}

const UploadRef = Type.Object(
  { uploadId: Type.String({ maxLength: 100, description: 'a stored upload of the tenant: its first MiB is the sample' }) },
  { additionalProperties: false },
);
const InferQuery = Type.Object({
  name: Type.Optional(Type.String({ maxLength: 200, description: 'the proposed dataset name, made an identifier (default: the upload\'s file name for an uploadId, else "dataset")' })),
});

const InferResponse = Type.Object({
  definition: DatasetBody,
  columns: Type.Array(
    Type.Object({
      name: Type.String(),
      header: Type.String({ description: 'the header as written' }),
      type: Type.String(),
      required: Type.Boolean({ description: 'no value of the sample was empty (the sample only: check before loading)' }),
      nullable: Type.Boolean(),
      values: Type.Integer({ description: 'rows of the sample' }),
      empty: Type.Integer({ description: 'of them, empty' }),
      maxLength: Type.Integer({ description: 'the longest value, in characters' }),
      samples: Type.Array(Type.String(), { description: 'up to 5 distinct non-empty values' }),
    }),
  ),
  dialect: Type.Object({
    delimiter: Type.String(),
    encoding: Type.String(),
    dateFormat: Type.String(),
    decimalSeparator: Type.String(),
    quotes: Type.String(),
    bom: Type.Boolean(),
    header: Type.Boolean(),
    lineTerminator: Type.String(),
    dateFormatAmbiguous: Type.Boolean({ description: 'day and month were both ≤ 12 everywhere: dateFormat is a guess' }),
    cutLine: Type.Boolean({ description: 'a partial last line of the sample was left out' }),
  }),
  sampledRows: Type.Integer({ description: 'data rows judged (header excluded)' }),
  sampleBytes: Type.Integer({ description: 'bytes of the file judged (after decompression)' }),
  note: Type.String(),
  warnings: Type.Array(Type.String()),
});

export async function datasetInferRoutes(app: FastifyInstance, deps: RouteDeps): Promise<void> {
  app.addContentTypeParser(SAMPLE_TYPES, readSample);

  const schema = {
    tags: ['datasets'],
    summary: 'Propose a dataset definition from the first bytes of a CSV file (the body) or of a stored upload',
    description:
      'Sniffs encoding, delimiter, quotes, date format and decimal separator, names the columns from the header and types them from the values, ' +
      `as DuckDB's sniff_csv does. The first ${SAMPLE_BYTES} bytes are judged; a body up to ${MAX_BODY_BYTES} bytes is cut, beyond that 413. ` +
      'The definition is ready for POST /datasets unchanged; types and required come from the sample only.',
    querystring: InferQuery,
    body: {
      content: {
        'text/csv': { schema: { description: 'the start of a CSV file (any encoding; gzip is decompressed)' } },
        'text/plain': { schema: { description: 'the same as text/csv' } },
        'application/octet-stream': { schema: { description: 'the start of a CSV file (any encoding; gzip is decompressed)' } },
        'application/json': { schema: UploadRef },
      },
    },
    response: { 200: InferResponse, ...errors(400, 401, 404, 410, 413, 415) },
  };
  app.post<{ Querystring: Static<typeof InferQuery> }>('/datasets/infer', { schema }, async (request) => {
    const body = request.body as SampleBody | Static<typeof UploadRef> | undefined | null;
    if (request.isMultipart()) throw new AppError('unsupported_content_type', 'send the start of the CSV file as the body (text/csv), not as multipart/form-data');
    if (body === undefined || body === null) throw new AppError('sample_empty', 'send the start of a CSV file as the body (text/csv), or { "uploadId": … } as JSON');
    const { sample, complete, filename } = 'sample' in body ? await gunzipped(body) : await sampleOfUpload(deps, request, body.uploadId);
    const name = request.query.name ?? filename?.replace(/(\.(csv|tsv|txt|gz))+$/i, '');
    try {
      const inference = inferDataset(sample, { name, complete });
      request.log.info({ columns: inference.columns.length, rows: inference.sampledRows, bytes: sample.length }, 'dataset inferred');
      return { ...inference, sampleBytes: sample.length };
    } catch (err) {
      if (err instanceof InferError) throw new AppError(err.code, err.message);
      throw err;
    }
  });
}

/**
 * Fastify content-type parser for a sample body: keeps the first SAMPLE_BYTES, reads and drops the rest,
 * and refuses a body past MAX_BODY_BYTES (declared or sent) with 413 body_too_large.
 */
function readSample(request: FastifyRequest, payload: Readable, done: (err: Error | null, body?: SampleBody) => void): void {
  const tooLarge = () => new AppError('body_too_large', `a sample body may be at most ${MAX_BODY_BYTES} bytes; only the first ${SAMPLE_BYTES} are read`);
  if (Number(request.headers['content-length'] ?? 0) > MAX_BODY_BYTES) return done(tooLarge());
  const chunks: Buffer[] = [];
  let kept = 0;
  let total = 0;
  let finished = false;
  const finish = (err: Error | null, body?: SampleBody) => {
    if (finished) return;
    finished = true;
    payload.off('data', onData);
    done(err, body);
  };
  const onData = (chunk: Buffer) => {
    total += chunk.length;
    if (total > MAX_BODY_BYTES) return finish(tooLarge());
    if (kept < SAMPLE_BYTES) {
      const part = chunk.subarray(0, SAMPLE_BYTES - kept);
      chunks.push(part);
      kept += part.length;
    }
  };
  payload.on('data', onData);
  payload.once('end', () => finish(null, { sample: Buffer.concat(chunks), complete: total <= SAMPLE_BYTES }));
  payload.once('error', (err) => finish(err));
}

/** The sample decompressed when it is gzip (RFC 1952 magic): at most SAMPLE_BYTES of its content. */
async function gunzipped(body: SampleBody): Promise<SampleBody> {
  if (!isGzip(body.sample)) return body;
  // A cut gzip stream is decompressed as far as it goes (sync flush), not refused.
  const gunzip = createGunzip({ finishFlush: zlib.Z_SYNC_FLUSH });
  const chunks: Buffer[] = [];
  let kept = 0;
  try {
    for await (const chunk of gunzip.end(body.sample) as AsyncIterable<Buffer>) {
      chunks.push(chunk.subarray(0, SAMPLE_BYTES - kept));
      kept += Math.min(chunk.length, SAMPLE_BYTES - kept);
      if (kept >= SAMPLE_BYTES) {
        gunzip.destroy();
        return { sample: Buffer.concat(chunks), complete: false };
      }
    }
  } catch (err) {
    throw new AppError('unsupported_media_type', `the sample starts as gzip but cannot be decompressed (${(err as Error).message})`);
  }
  return { sample: Buffer.concat(chunks), complete: body.complete };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The first SAMPLE_BYTES of the tenant's upload `id` (decompressed): 404 for an id it cannot see, 410 when its file is gone. */
async function sampleOfUpload(deps: RouteDeps, request: FastifyRequest, id: string): Promise<SampleBody> {
  const upload = UUID.test(id) ? await findUpload(deps.db, request.tenant.id, id.toLowerCase()) : undefined;
  if (!upload) throw new AppError('not_found', 'upload not found');
  if (upload.object_deleted_at !== null) throw new AppError('object_gone');
  if (upload.size_bytes === 0) throw new AppError('sample_empty', 'the upload is empty');
  let head: Buffer;
  try {
    head = await deps.store.readHead(upload.object_key, SAMPLE_BYTES);
  } catch (err) {
    if ((await deps.store.head(upload.object_key).catch(() => undefined)) === null) throw new AppError('object_gone');
    throw new AppError('storage_unavailable', undefined, { cause: err });
  }
  return { ...(await gunzipped({ sample: head, complete: upload.size_bytes <= SAMPLE_BYTES })), filename: upload.filename };
}
