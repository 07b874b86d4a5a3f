// The client commands: they talk to a running service over HTTP (never to the database).
import { DATASETS_CLIENT_USAGE } from './datasets.ts';
import { deliveriesCommand, redeliverCommand } from './deliveries.ts';
import { endpointsCommand, ENDPOINTS_USAGE } from './endpoints.ts';
import { errorsCommand } from './errors.ts';
import { retryCommand } from './retry.ts';
import { uploadCommand } from './upload.ts';
import { listCommand, removeRowsCommand, statusCommand } from './uploads.ts';

export const CLIENT_COMMANDS: Record<string, (argv: string[]) => Promise<number>> = {
  upload: uploadCommand,
  status: statusCommand,
  list: listCommand,
  errors: errorsCommand,
  retry: retryCommand,
  'remove-rows': removeRowsCommand,
  deliveries: deliveriesCommand,
  redeliver: redeliverCommand,
  endpoints: endpointsCommand,
};

export const CLIENT_USAGE = `
client commands (talk to a running service: STREAM_API_URL, default http://localhost:3002, and STREAM_API_KEY,
or --url / --key; --json prints machine-readable output only):
  upload FILE [--dataset D] [--callback URL] [--wait]   upload a CSV; --wait follows it to the end
    [--mode append|upsert|replace] [--dry-run] [--max-errors N] [--max-error-ratio R] [--idempotency-key K]
    [--tus | --no-tus]                                  resumable (tus) from STREAM_API_TUS_THRESHOLD bytes (64 MiB)
  status ID                                             one upload
  list [--status S] [--limit N]                         uploads, newest first
  errors ID [--csv]                                     rejected rows (--csv: the fixable CSV)
  retry ID [--wait]                                     process a failed upload again
  remove-rows ID                                        undo a load: remove the rows an append loaded
  deliveries ID                                         an upload's notifications and their attempts
  redeliver DELIVERY_ID                                 send a notification again
${ENDPOINTS_USAGE}${DATASETS_CLIENT_USAGE}`;
