// `upload FILE [--dataset D] [--callback URL] [--wait]`: stream the file to the service with a byte
// progress line, then (with --wait) follow the load to its end.
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { UploadAccepted } from '../client/api.ts';
import { UsageError } from '../client/errors.ts';
import { formatBytes, formatDuration, formatPercent, ProgressLine, RateMeter, type BarLine } from '../client/progress.ts';
import { runCommand } from './common.ts';
import { waitAndSummarize } from './wait.ts';

export function uploadCommand(argv: string[]): Promise<number> {
  const spec = {
    usage: 'upload FILE [--dataset D] [--callback URL] [--wait]',
    options: { dataset: { type: 'string' }, callback: { type: 'string' }, wait: { type: 'boolean', default: false } },
    positionals: ['FILE'],
  } as const;
  return runCommand(argv, spec, async ({ values, args, out, client }) => {
    const commandStartedAt = Date.now();
    const file = await readableFile(args[0]!);
    const fields: Record<string, string> = {};
    if (values.dataset !== undefined) fields.dataset = values.dataset;
    if (values.callback !== undefined) fields.callbackUrl = values.callback;

    const line = new ProgressLine(out.stderr);
    const meter = new RateMeter();
    let sent = 0;
    let bodySent = false;
    let uploadId: string | null = null;
    const render = (): BarLine => {
      if (bodySent) {
        const size = formatBytes(file.size);
        return { label: 'upload', fraction: 1, details: [`${size} / ${size}`, 'sent; the service is storing the last part'] };
      }
      const rate = meter.perSecond();
      const left = rate && rate > 0 ? (file.size - sent) / rate : null;
      return {
        label: 'upload',
        fraction: file.size === 0 ? 1 : sent / file.size,
        details: [
          `${formatBytes(sent)} / ${formatBytes(file.size)}`,
          rate === null ? '' : `${formatBytes(rate)}/s`,
          left === null || sent >= file.size ? '' : `ETA ${formatDuration(left * 1000)}`,
        ].filter(Boolean),
      };
    };
    const plain = () => `upload ${formatPercent(sent / file.size)}: ${formatBytes(sent)} of ${formatBytes(file.size)}`;

    // Ctrl-C: end the progress line cleanly and say what became of the upload.
    const onInterrupt = () => {
      line.breakLine();
      out.message(uploadId ? `interrupted; the upload goes on at the service: stream-api status ${uploadId}` : 'interrupted; nothing was stored');
      process.exit(130);
    };
    process.once('SIGINT', onInterrupt);
    try {
      if (!line.tty) out.message(`uploading ${file.filename} (${formatBytes(file.size)}) to ${client.baseUrl}`);
      const uploadStartedAt = Date.now();
      let accepted: UploadAccepted;
      try {
        accepted = await client.upload(file, fields, {
          onProgress: (bytes) => {
            sent = bytes;
            meter.add(Date.now(), bytes);
            line.update(render(), plain);
          },
          onSent: () => {
            bodySent = true;
            line.update(render(), undefined, true);
          },
        });
      } catch (err) {
        line.breakLine();
        throw err;
      }
      uploadId = accepted.uploadId;
      const uploadMs = Date.now() - uploadStartedAt;
      sent = file.size;
      bodySent = false;
      line.done(render());
      const speed = uploadMs > 0 ? `, ${formatBytes((file.size * 1000) / uploadMs)}/s` : '';
      out.message(`uploaded ${formatBytes(file.size)} in ${formatDuration(uploadMs)}${speed}: upload ${accepted.uploadId}`);

      if (!values.wait) {
        out.result(accepted, () => accepted.uploadId);
        if (!out.json) out.message(`follow it: stream-api status ${accepted.uploadId}`);
        return 0;
      }
      return await waitAndSummarize(client, out, accepted.uploadId, { commandStartedAt, uploadMs });
    } finally {
      process.removeListener('SIGINT', onInterrupt);
    }
  });
}

async function readableFile(file: string): Promise<{ path: string; filename: string; size: number }> {
  const info = await stat(file).catch((err: NodeJS.ErrnoException) => {
    throw new UsageError(err.code === 'ENOENT' ? `no such file: ${file}` : `cannot read ${file}: ${err.message}`);
  });
  if (!info.isFile()) throw new UsageError(`not a regular file: ${file}`);
  return { path: file, filename: path.basename(file), size: info.size };
}
