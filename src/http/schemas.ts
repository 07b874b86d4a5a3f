// Shared TypeBox schemas: they validate, type handlers, and feed /openapi.json.
import { Type, type Static } from '@sinclair/typebox';

export const ErrorResponse = Type.Object(
  { error: Type.Object({ code: Type.String(), message: Type.String() }) },
  { $id: 'ErrorResponse', description: 'Every error: a stable code and a human message' },
);

const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()]);

export const UploadStatusBody = Type.Object(
  {
    uploadId: Type.String({ format: 'uuid' }),
    status: Type.Union([Type.Literal('uploaded'), Type.Literal('processing'), Type.Literal('completed'), Type.Literal('failed')]),
    dataset: Type.String(),
    mode: Type.Union([Type.Literal('append'), Type.Literal('upsert'), Type.Literal('replace')], {
      description: 'how the load treats the dataset\'s rows: append, upsert by its key, or replace them all',
    }),
    dryRun: Type.Boolean({ description: 'true: validated in full (counts, errors.csv) and nothing loaded (AIP-163 validate_only)' }),
    filename: Type.String(),
    sizeBytes: Type.Integer({ description: 'bytes stored: the file as sent (compressed, for a gzip file)' }),
    sha256: Nullable(Type.String({ description: 'hex SHA-256 of the file; null for a direct upload (its bytes never pass through the API)' })),
    compression: Type.Union([Type.Literal('gzip'), Type.Literal('none'), Type.Null()], {
      description: 'how the stored file is encoded, detected by its first bytes (gzip: 1f 8b); null until processing has read them',
    }),
    rowsProcessed: Type.Integer(),
    rowsFailed: Type.Integer({ description: 'rows rejected (errors.csv), duplicate_key included' }),
    rowsInserted: Type.Union([Type.Integer(), Type.Null()], { description: 'rows the load added to the table; null until completed' }),
    rowsUpdated: Type.Union([Type.Integer(), Type.Null()], { description: 'existing rows an upsert updated (0 for append and replace); null until completed' }),
    bytesProcessed: Type.Integer({ description: 'stored bytes read so far (compressed, for a gzip file); progress = bytesProcessed / sizeBytes' }),
    uncompressedBytesProcessed: Type.Integer({ description: 'bytes of CSV read so far, after decompression (= bytesProcessed for an uncompressed file)' }),
    progress: Type.Number({ minimum: 0, maximum: 1 }),
    attempt: Type.Integer(),
    error: Type.Union([Type.Object({ code: Type.Union([Type.String(), Type.Null()]), message: Type.String() }), Type.Null()]),
    unknownColumns: Type.Array(Type.String()),
    callbackUrl: Nullable(Type.String()),
    rowsRemovedAt: Nullable(Type.String({ format: 'date-time', description: 'when DELETE /uploads/:id/rows removed the rows this upload appended; null while they are in place' })),
    rowsRemoved: Type.Union([Type.Integer(), Type.Null()], { description: 'rows that removal deleted (rows a later upsert took over, or a replace deleted, are no longer this upload\'s); null before' }),
    createdAt: Type.String({ format: 'date-time' }),
    startedAt: Nullable(Type.String({ format: 'date-time' })),
    completedAt: Nullable(Type.String({ format: 'date-time' })),
    updatedAt: Type.String({ format: 'date-time' }),
    delivery: Type.Optional(Type.Union([Type.Object({}, { additionalProperties: true }), Type.Null()])),
  },
  { $id: 'UploadStatus' },
);
export type UploadStatusBody = Static<typeof UploadStatusBody>;

export const UploadIdParams = Type.Object({ id: Type.String({ description: 'upload id (uuid)' }) });

/** Response schemas for the given error statuses, all of the shared error shape. */
export function errors(...statuses: number[]): Record<number, ReturnType<typeof Type.Ref>> {
  return Object.fromEntries(statuses.map((status) => [status, Type.Ref(ErrorResponse)]));
}
