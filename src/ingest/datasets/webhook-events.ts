import type { DatasetDef } from './types.ts';

// Matches the files of src/datagen (`stream-api generate`). The table additionally has upload_id (DEFAULT from the
// `app.upload_id` session setting, so it is not sent per row) and line_number (sent as the
// first COPY column).
export const webhookEvents: DatasetDef = {
  name: 'webhook_events',
  table: 'webhook_events',
  columns: [
    { name: 'event_id', type: 'uuid', required: true },
    { name: 'event_type', type: 'text', required: true, maxLength: 100 },
    { name: 'source', type: 'text' },
    { name: 'customer_id', type: 'text' },
    { name: 'amount_cents', type: 'bigint' },
    { name: 'currency', type: 'text', pattern: /^[A-Z]{3}$/ },
    { name: 'occurred_at', type: 'timestamptz', required: true },
    { name: 'payload', type: 'jsonb' },
  ],
};
