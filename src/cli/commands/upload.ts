// `upload FILE [--dataset D] [--callback URL] [--wait] …`: send the file to the service with a byte
// progress line — one multipart POST, or for files of STREAM_API_TUS_THRESHOLD bytes and more a resumable
// tus upload that survives network failures and a restart of the command — then (with --wait) follow the
// load to its end.
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { UploadAccepted } from '../client/api.ts';
import { loadUploadSettings } from '../client/config.ts';
import { UsageError } from '../client/errors.ts';
import { formatBytes, formatDuration, formatPercent, ProgressLine, RateMeter, type BarLine } from '../client/progress.ts';
import { RESUME_STATE_FILE, tusUpload, type TusFile } from '../client/tus.ts';
import { runCommand } from './common.ts';
import { waitAndSummarize } from './wait.ts';

export const UPLOAD_USAGE =
  'upload FILE [--dataset D] [--mode append|upsert|replace] [--dry-run] [--callback URL] [--max-errors N] [--max-error-ratio R] [--idempotency-key K] [--tus | --no-tus] [--wait]';

export function uploadCommand(argv: string[]): Promise<number> {
  const spec = {
    usage: `${UPLOAD_USAGE}
  files of STREAM_API_TUS_THRESHOLD bytes (default 64 MiB) or more are sent resumably (tus): after a network
  failure it resumes by itself; stopped or killed, the same command run again picks up where it stopped.
  --tus / --no-tus force either way.`,
    options: {
      dataset: { type: 'string' },
      mode: { type: 'string' },
      'dry-run': { type: 'boolean', default: false },
      callback: { type: 'string' },
      'max-errors': { type: 'string' },
      'max-error-ratio': { type: 'string' },
      'idempotency-key': { type: 'string' },
      tus: { type: 'boolean', default: false },
      'no-tus': { type: 'boolean', default: false },
      wait: { type: 'boolean', default: false },
    },
    positionals: ['FILE'],
  } as const;
  return runCommand(argv, spec, async ({ values, args, out, client }) => {
    const commandStartedAt = Date.now();
    if (values.tus && values['no-tus']) throw new UsageError('--tus and --no-tus contradict each other');
    const settings = loadUploadSettings();
    const file = await readableFile(args[0]!);
    // The form fields of POST /uploads; tus carries them in Upload-Metadata under the same names.
    const fields: Record<string, string> = {};
    if (values.dataset !== undefined) fields.dataset = values.dataset;
    if (values.mode !== undefined) fields.mode = values.mode; // checked by the service (400 invalid_mode)
    if (values['dry-run']) fields.dryRun = 'true';
    if (values.callback !== undefined) fields.callbackUrl = values.callback;
    if (values['max-errors'] !== undefined) fields.maxErrors = values['max-errors'];
    if (values['max-error-ratio'] !== undefined) fields.maxErrorRatio = values['max-error-ratio'];
    const idempotencyKey = values['idempotency-key'];
    const resumable = values.tus || (!values['no-tus'] && file.size >= settings.tusThresholdBytes);

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
      out.message(
        uploadId
          ? `interrupted; the upload goes on at the service: stream-api status ${uploadId}`
          : resumable
            ? `interrupted; run the same command again to resume where it stopped (state: ${path.join(settings.stateDir, RESUME_STATE_FILE)})`
            : 'interrupted; nothing was stored',
      );
      process.exit(130);
    };
    process.once('SIGINT', onInterrupt);
    try {
      const how = resumable ? 'resumable (tus)' : 'one request';
      if (!line.tty) out.message(`uploading ${file.filename} (${formatBytes(file.size)}) to ${client.baseUrl}, ${how}`);
      const uploadStartedAt = Date.now();
      let resumedFrom = 0;
      const events = {
        onProgress: (bytes: number) => {
          sent = bytes;
          meter.add(Date.now(), bytes);
          line.update(render(), plain);
        },
        onSent: () => {
          bodySent = true;
          line.update(render(), undefined, true);
        },
      };
      let accepted: UploadAccepted;
      try {
        if (resumable) {
          const done = await tusUpload(
            client.config,
            file,
            { stateDir: settings.stateDir, metadata: idempotencyKey === undefined ? fields : { ...fields, idempotencyKey } },
            {
              ...events,
              onResume: (offset) => {
                if (offset === 0) return;
                line.breakLine();
                out.message(`resuming at ${formatBytes(offset)} (${formatPercent(offset / file.size)}): the service already holds that much`);
              },
              onRetry: (reason, delayMs) => {
                line.breakLine();
                out.message(`connection lost (${reason}); resuming ${delayMs > 0 ? `in ${formatDuration(delayMs)} ` : ''}from what the service holds`);
              },
            },
          );
          resumedFrom = done.resumedFrom;
          accepted = { uploadId: done.uploadId, status: 'uploaded', statusUrl: done.statusUrl };
        } else {
          accepted = await client.upload(file, fields, events, idempotencyKey === undefined ? {} : { 'idempotency-key': idempotencyKey });
        }
      } catch (err) {
        line.breakLine();
        throw err;
      }
      uploadId = accepted.uploadId;
      const uploadMs = Date.now() - uploadStartedAt;
      sent = file.size;
      bodySent = false;
      line.done(render());
      const speed = uploadMs > 0 ? `, ${formatBytes(((file.size - resumedFrom) * 1000) / uploadMs)}/s` : '';
      const resumed = resumedFrom > 0 ? ` (resumed at ${formatBytes(resumedFrom)})` : '';
      out.message(`uploaded ${formatBytes(file.size)} in ${formatDuration(uploadMs)}${speed}${resumed}: upload ${accepted.uploadId}`);

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

async function readableFile(file: string): Promise<TusFile> {
  const info = await stat(file).catch((err: NodeJS.ErrnoException) => {
    throw new UsageError(err.code === 'ENOENT' ? `no such file: ${file}` : `cannot read ${file}: ${err.message}`);
  });
  if (!info.isFile()) throw new UsageError(`not a regular file: ${file}`);
  return { path: file, filename: path.basename(file), size: info.size, mtimeMs: info.mtimeMs };
}
