// A Slack-compatible incoming webhook: `{ text }` describing the event.
import type { HttpChannel } from './types.ts';

export const slackChannel: HttpChannel = {
  build(delivery) {
    const p = delivery.payload as {
      type?: string;
      uploadId?: string;
      dataset?: string;
      rowsRemoved?: number;
      dryRun?: boolean;
      status?: string;
      attempt?: number;
      rowsProcessed?: number;
      rowsFailed?: number;
      error?: string;
    };
    const text =
      p.type === 'upload.rows_removed'
        ? `:wastebasket: upload ${p.uploadId}: ${p.rowsRemoved ?? 0} rows removed from ${p.dataset}`
        : p.status === 'processing'
        ? `:hourglass_flowing_sand: upload ${p.uploadId} processing (attempt ${p.attempt ?? 1})`
        : `${p.status === 'completed' ? ':white_check_mark:' : ':x:'} upload ${p.uploadId} ${p.status}: ` +
          (p.dryRun ? `dry run, ${p.rowsProcessed ?? 0} rows valid (none loaded), ` : `${p.rowsProcessed ?? 0} rows loaded, `) +
          `${p.rowsFailed ?? 0} rejected` +
          (p.error ? ` — ${p.error}` : '');
    return { url: delivery.target, body: JSON.stringify({ text }), headers: { 'content-type': 'application/json' } };
  },
};
