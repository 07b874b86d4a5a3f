// DELETE /uploads/:id/rows — undo a load: the rows an append loaded are removed (src/uploads/remove-rows.ts).
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { removeUploadRows } from '../../uploads/remove-rows.ts';
import type { AppDeps } from '../app.ts';
import { errors, UploadIdParams } from '../schemas.ts';
import { uploadIdParam } from './uploads.ts';

const RowsRemovedBody = Type.Object({
  uploadId: Type.String({ format: 'uuid' }),
  dataset: Type.String(),
  rowsRemoved: Type.Integer({ minimum: 0, description: 'rows deleted: those still the upload\'s (a later upsert takes over the rows it updates)' }),
  rowsRemovedAt: Type.String({ format: 'date-time', description: 'when they were removed (a repeated call answers the first removal)' }),
});

export async function uploadRowsRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  app.delete(
    '/uploads/:id/rows',
    {
      schema: {
        tags: ['uploads'],
        summary: 'Undo a load: remove the rows this upload appended, in one transaction with its upload.rows_removed event',
        description:
          'Deletes the dataset table\'s rows WHERE upload_id = :id, records rowsRemovedAt / rowsRemoved on the upload and writes the ' +
          '`upload.rows_removed` event in the same transaction. Idempotent: once removed, 200 with the first removal\'s answer and no new event. ' +
          '409: `upload_not_completed` (uploaded, processing or failed), `dry_run_loaded_nothing`, `rows_not_removable` (mode upsert or replace), ' +
          '`dataset_deleted`. Another tenant\'s upload: 404.',
        params: UploadIdParams,
        response: { 200: RowsRemovedBody, ...errors(401, 404, 409) },
      },
    },
    async (request: FastifyRequest<{ Params: { id: string } }>, reply) => {
      const result = await removeUploadRows(deps.db, request.tenant.id, uploadIdParam(request));
      if (result.repeated) reply.header('idempotent-replayed', 'true');
      return result.body;
    },
  );
}
