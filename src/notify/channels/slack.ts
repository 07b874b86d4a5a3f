// A Slack-compatible incoming webhook: `{ text }` describing the event.
import type { HttpChannel } from './types.ts';

export const slackChannel: HttpChannel = {
  build(delivery) {
    const p = delivery.payload as {
      uploadId?: string;
      status?: string;
      attempt?: number;
      rowsProcessed?: number;
      rowsFailed?: number;
      error?: string;
    };
    const text =
      p.status === 'processing'
        ? `:hourglass_flowing_sand: upload ${p.uploadId} processing (attempt ${p.attempt ?? 1})`
        : `${p.status === 'completed' ? ':white_check_mark:' : ':x:'} upload ${p.uploadId} ${p.status}: ` +
          `${p.rowsProcessed ?? 0} rows loaded, ${p.rowsFailed ?? 0} rejected` +
          (p.error ? ` — ${p.error}` : '');
    return { url: delivery.target, body: JSON.stringify({ text }), headers: { 'content-type': 'application/json' } };
  },
};
