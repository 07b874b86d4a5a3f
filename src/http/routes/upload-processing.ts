// Rejected rows (JSON and a fixable CSV) and retrying a failed upload without re-uploading it.
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../../errors.ts';
import { resolveInputFormat } from '../../ingest/csv/input-format.ts';
import { errorsCsvHeader, errorsCsvLine } from '../../uploads/errors-csv.ts';
import { presentUpload } from '../../uploads/present.ts';
import { listUploadErrors, resetForRetry } from '../../uploads/upload-errors.repository.ts';
import { findUpload } from '../../uploads/uploads.repository.ts';
import type { AppDeps } from '../app.ts';
import { Type, type Static } from '@sinclair/typebox';
import { errors, UploadIdParams, UploadStatusBody } from '../schemas.ts';
import { uploadIdParam } from './uploads.ts';

type IdParams = { Params: { id: string } };

const ErrorsQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100, description: 'items per page, 1–1000' })),
  cursor: Type.Optional(
    Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description: 'the nextCursor of the previous page (a line number)' }),
  ),
});

export async function uploadProcessingRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  const visibleUpload = async (request: FastifyRequest<IdParams>) => {
    const row = await findUpload(deps.db, request.tenant.id, uploadIdParam(request));
    if (!row) throw new AppError('not_found', 'upload not found');
    return row;
  };

  const errorItem = Type.Object({
    line: Type.Integer({ description: 'physical line of the record in the file (header = 1)' }),
    column: Type.Union([Type.String(), Type.Null()]),
    code: Type.String(),
    message: Type.String(),
    raw: Type.String({ description: 'the original record (capped at 8 KiB)' }),
  });
  const errorsSchema = {
    tags: ['uploads'],
    summary: 'Rejected rows of an upload (the first 10,000 are stored; all are counted in rowsFailed)',
    params: UploadIdParams,
    querystring: ErrorsQuery,
    response: {
      200: Type.Object({
        uploadId: Type.String(),
        rowsFailed: Type.Integer(),
        items: Type.Array(errorItem),
        nextCursor: Type.Union([Type.String(), Type.Null()]),
      }),
      ...errors(400, 401, 404),
    },
  };
  app.get<IdParams & { Querystring: Static<typeof ErrorsQuery> }>('/uploads/:id/errors', { schema: errorsSchema }, async (request) => {
    const upload = await visibleUpload(request);
    const { limit = 100, cursor: afterLine = 0 } = request.query;
    const rows = await listUploadErrors(deps.db, upload.id, afterLine, limit + 1);
    const page = rows.slice(0, limit);
    return {
      uploadId: upload.id,
      rowsFailed: upload.rows_failed,
      items: page.map((r) => ({ line: r.line, column: r.column_name, code: r.code, message: r.message, raw: r.raw })),
      nextCursor: rows.length > limit ? String(page.at(-1)!.line) : null,
    };
  });

  // The rejected lines as they were, under the original header, plus _line and _error: fix and re-upload.
  const csvSchema = {
    tags: ['uploads'],
    summary: 'Rejected rows as CSV: the original header and lines plus _line and _error — fix and re-upload',
    params: UploadIdParams,
    produces: ['text/csv'],
    response: { 200: Type.String({ description: 'text/csv' }), ...errors(401, 404) },
  };
  app.get<IdParams>('/uploads/:id/errors.csv', { schema: csvSchema }, async (request, reply) => {
    const upload = await visibleUpload(request);
    const db = deps.db;
    async function* csv() {
      const { delimiter } = resolveInputFormat(upload.input_format ?? undefined);
      const header = errorsCsvHeader(upload.csv_header, delimiter);
      yield header.line;
      let afterLine = 0;
      for (;;) {
        const rows = await listUploadErrors(db, upload.id, afterLine, 1000);
        if (rows.length === 0) return;
        yield rows.map((r) => errorsCsvLine(r, header.fields, delimiter)).join('');
        afterLine = rows.at(-1)!.line;
      }
    }
    return reply
      .header('content-type', 'text/csv; charset=utf-8')
      .header('content-disposition', `attachment; filename="errors-${upload.id}.csv"`)
      .send(Readable.from(csv()));
  });

  const retry = async (request: FastifyRequest<IdParams>, reply: FastifyReply) => {
    const upload = await visibleUpload(request);
    if (upload.status !== 'failed') {
      throw new AppError('invalid_state', `only a failed upload can be retried; this one is ${upload.status}`);
    }
    // Decided under the row lock, so a retention purge cannot delete the object of a retry it accepts.
    const decision = await deps.db
      .transaction()
      .execute((trx) =>
        resetForRetry(trx, request.tenant.id, upload.id, deps.config.worker.maxAttempts, async (key) => (await deps.store.head(key)) !== null),
      );
    if (decision === 'not_found') throw new AppError('not_found', 'upload not found');
    if (decision === 'not_failed') throw new AppError('invalid_state', 'only a failed upload can be retried');
    if (decision === 'object_gone') throw new AppError('object_gone');
    const row = await findUpload(deps.db, request.tenant.id, upload.id);
    return reply.status(202).header('location', `/uploads/${upload.id}`).send(presentUpload(row!));
  };
  const retrySchema = {
    tags: ['uploads'],
    summary: 'Process a failed upload again from its stored file (no re-upload)',
    params: UploadIdParams,
    response: { 202: Type.Ref(UploadStatusBody), ...errors(401, 404, 409, 410) },
  };
  app.post('/uploads/:id/retry', { schema: retrySchema }, retry);
  app.post('/upload/:id/retry', { schema: { ...retrySchema, summary: 'Alias of POST /uploads/:id/retry' } }, retry);
}
