// Rejected rows (JSON and a fixable CSV) and retrying a failed upload without re-uploading it.
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../../errors.ts';
import { presentUpload } from '../../uploads/present.ts';
import { listUploadErrors, resetForRetry } from '../../uploads/upload-errors.repository.ts';
import { findUpload } from '../../uploads/uploads.repository.ts';
import type { AppDeps } from '../app.ts';
import { uploadIdParam } from './uploads.ts';

type IdParams = { Params: { id: string } };

export async function uploadProcessingRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  const visibleUpload = async (request: FastifyRequest<IdParams>) => {
    const row = await findUpload(deps.db, request.tenant.id, uploadIdParam(request));
    if (!row) throw new AppError('not_found', 'upload not found');
    return row;
  };

  app.get<IdParams & { Querystring: { limit?: string; cursor?: string } }>('/uploads/:id/errors', async (request) => {
    const upload = await visibleUpload(request);
    const limit = request.query.limit === undefined ? 100 : Number(request.query.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
      throw new AppError('validation_failed', 'limit must be an integer from 1 to 1000');
    }
    const afterLine = request.query.cursor === undefined ? 0 : Number(request.query.cursor);
    if (!Number.isSafeInteger(afterLine) || afterLine < 0) throw new AppError('validation_failed', 'cursor is invalid');
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
  app.get<IdParams>('/uploads/:id/errors.csv', async (request, reply) => {
    const upload = await visibleUpload(request);
    const db = deps.db;
    async function* csv() {
      yield `${upload.csv_header ?? ''},_line,_error\n`;
      let afterLine = 0;
      for (;;) {
        const rows = await listUploadErrors(db, upload.id, afterLine, 1000);
        if (rows.length === 0) return;
        yield rows.map((r) => `${r.raw},${r.line},${csvField(`${r.code}: ${r.message}`)}\n`).join('');
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
    if (upload.object_deleted_at || (await deps.store.head(upload.object_key)) === null) {
      throw new AppError('object_gone');
    }
    const outcome = await deps.db
      .transaction()
      .execute((trx) => resetForRetry(trx, request.tenant.id, upload.id, deps.config.worker.maxAttempts));
    if (outcome === 'not_failed') throw new AppError('invalid_state', 'only a failed upload can be retried');
    const row = await findUpload(deps.db, request.tenant.id, upload.id);
    return reply.status(202).header('location', `/uploads/${upload.id}`).send(presentUpload(row!));
  };
  app.post('/uploads/:id/retry', retry);
  app.post('/upload/:id/retry', retry); // the specification's path
}

function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}
