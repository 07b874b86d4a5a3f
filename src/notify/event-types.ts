// The event types a tenant can subscribe to, each with the JSON Schema (TypeBox) of its payload —
// the exact body a webhook receiver gets. GET /event-types serves this table; tests check the
// payloads the worker writes against these schemas.
import { Type, type TSchema } from '@sinclair/typebox';

const Timestamp = Type.String({ format: 'date-time', description: 'when it happened (UTC, milliseconds)' });
const UploadId = Type.String({ format: 'uuid' });

export const UploadProcessingPayload = Type.Object(
  {
    type: Type.Literal('upload.processing'),
    uploadId: UploadId,
    status: Type.Literal('processing'),
    attempt: Type.Integer({ minimum: 1, description: 'the processing attempt that started (a retry is a new one)' }),
    timestamp: Timestamp,
  },
  { additionalProperties: false },
);

export const UploadCompletedPayload = Type.Object(
  {
    type: Type.Literal('upload.completed'),
    uploadId: UploadId,
    status: Type.Literal('completed'),
    rowsProcessed: Type.Integer({ minimum: 0, description: 'rows loaded' }),
    rowsFailed: Type.Integer({ minimum: 0, description: 'rows rejected (see GET /uploads/:id/errors)' }),
    dryRun: Type.Optional(Type.Literal(true, { description: 'present on a dry run (dryRun=true): the rows were validated and counted, nothing was loaded' })),
    timestamp: Timestamp,
  },
  { additionalProperties: false },
);

export const UploadFailedPayload = Type.Object(
  {
    type: Type.Literal('upload.failed'),
    uploadId: UploadId,
    status: Type.Literal('failed'),
    rowsProcessed: Type.Integer({ minimum: 0, description: 'always 0: a failed load commits no row' }),
    rowsFailed: Type.Integer({ minimum: 0 }),
    error: Type.String({ description: 'what went wrong, for people' }),
    errorCode: Type.String({ description: 'what went wrong, stable (e.g. too_many_errors, worker_lost)' }),
    dryRun: Type.Optional(Type.Literal(true, { description: 'present on a dry run (dryRun=true): the rows were validated and counted, nothing was loaded' })),
    timestamp: Timestamp,
  },
  { additionalProperties: false },
);

export const UploadRowsRemovedPayload = Type.Object(
  {
    type: Type.Literal('upload.rows_removed'),
    uploadId: UploadId,
    dataset: Type.String({ description: 'the dataset whose table the rows were removed from' }),
    rowsRemoved: Type.Integer({ minimum: 0, description: 'rows deleted: those still the upload\'s (a later upsert takes over the rows it updates)' }),
    timestamp: Timestamp,
  },
  { additionalProperties: false },
);

export const EndpointDisabledPayload = Type.Object(
  {
    type: Type.Literal('endpoint.disabled'),
    endpointId: Type.String({ format: 'uuid', description: 'the endpoint that was disabled (not this receiver)' }),
    url: Type.String({ description: 'where that endpoint pointed' }),
    reason: Type.String({ description: 'why, for people' }),
    failingSince: Timestamp,
    consecutiveFailures: Type.Integer({ minimum: 1 }),
    timestamp: Timestamp,
  },
  { additionalProperties: false },
);

export type EventType = 'upload.processing' | 'upload.completed' | 'upload.failed' | 'upload.rows_removed' | 'endpoint.disabled';

export interface EventTypeInfo {
  name: EventType;
  description: string;
  /** also sent to the upload's own callbackUrl (the others go to subscribed endpoints only) */
  toCallbackUrl: boolean;
  schema: TSchema;
}

/** Every event type: an upload's, in the order of its life, then the operational ones. */
export const EVENT_TYPES: readonly EventTypeInfo[] = [
  {
    name: 'upload.processing',
    description: 'a processing attempt of an upload started (once per attempt; a retry starts a new one)',
    toCallbackUrl: false,
    schema: UploadProcessingPayload,
  },
  {
    name: 'upload.completed',
    description: 'an upload was loaded: its rows are committed',
    toCallbackUrl: true,
    schema: UploadCompletedPayload,
  },
  {
    name: 'upload.failed',
    description: 'an upload failed: nothing of it is committed; POST /uploads/:id/retry may try again',
    toCallbackUrl: true,
    schema: UploadFailedPayload,
  },
  {
    name: 'upload.rows_removed',
    description: 'the rows an append loaded were taken back (DELETE /uploads/:id/rows), in one transaction with this event',
    toCallbackUrl: false,
    schema: UploadRowsRemovedPayload,
  },
  {
    name: 'endpoint.disabled',
    description:
      'operational: an endpoint of the tenant failed without a success for ENDPOINT_DISABLE_AFTER_HOURS and was disabled; its pending deliveries are kept until it is enabled again',
    toCallbackUrl: false,
    schema: EndpointDisabledPayload,
  },
];

export const EVENT_TYPE_NAMES: readonly EventType[] = EVENT_TYPES.map((t) => t.name);

/** The types an upload's callbackUrl receives (its traffic as before endpoints existed). */
export const CALLBACK_EVENT_TYPES: readonly EventType[] = EVENT_TYPES.filter((t) => t.toCallbackUrl).map((t) => t.name);

/** Outcomes of an upload: a newer one supersedes older pending notices of the upload to the same target. */
export const OUTCOME_EVENT_TYPES: readonly EventType[] = ['upload.completed', 'upload.failed'];
