// `retry ID [--wait]`: process a failed upload again from its stored file (no re-upload).
import type { UploadBody } from '../client/events.ts';
import { runCommand } from './common.ts';
import { describeUpload } from './uploads.ts';
import { waitAndSummarize } from './wait.ts';

export function retryCommand(argv: string[]): Promise<number> {
  const spec = { usage: 'retry ID [--wait]', options: { wait: { type: 'boolean', default: false } }, positionals: ['ID'] } as const;
  return runCommand(argv, spec, async ({ values, args, out, client }) => {
    const commandStartedAt = Date.now();
    const upload = await client.json<UploadBody>('POST', `/uploads/${encodeURIComponent(args[0]!)}/retry`);
    out.message(`retry queued: upload ${upload.uploadId}`);
    if (!values.wait) {
      out.result(upload, () => describeUpload(upload));
      return 0;
    }
    return waitAndSummarize(client, out, upload.uploadId, { commandStartedAt, uploadMs: null });
  });
}
