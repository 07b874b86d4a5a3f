// `--wait` for upload and retry: follow the upload live (a row progress line on a terminal, a few plain
// lines otherwise), then print the summary. Exit 1 when the upload ended `failed`.
import type { ApiClient } from '../client/api.ts';
import { EXIT_FAILED, EXIT_OK } from '../client/errors.ts';
import { followUpload, type LiveUpdate } from '../client/events.ts';
import type { Output } from '../client/output.ts';
import { formatCount, formatPercent, ProgressLine, RateMeter, type BarLine } from '../client/progress.ts';
import { describeSummary, summarize } from '../client/summary.ts';

export interface WaitTiming {
  /** when the command started (Date.now()) */
  commandStartedAt: number;
  uploadMs: number | null;
}

export async function waitAndSummarize(client: ApiClient, out: Output, uploadId: string, timing: WaitTiming): Promise<number> {
  const waitStartedAt = Date.now();
  const line = new ProgressLine(out.stderr);
  const meter = new RateMeter(5000);
  let status = '';
  let processingSeenAt: number | null = null;
  let serverRate: number | undefined;
  let state = { rowsProcessed: 0, rowsFailed: 0, progress: 0 };

  const render = (): BarLine => {
    if (status === 'uploaded') return { label: 'queued', fraction: null, details: ['waiting for a worker'] };
    const rate = serverRate ?? meter.perSecond();
    return {
      label: 'rows  ',
      fraction: state.progress,
      details: [
        `${formatCount(state.rowsProcessed)} rows`,
        rate === null ? '' : `${formatCount(rate)} rows/s`,
        state.rowsFailed > 0 ? `${formatCount(state.rowsFailed)} rejected` : '',
      ].filter(Boolean),
    };
  };
  const plain = () =>
    `processing ${formatPercent(state.progress)}: ${formatCount(state.rowsProcessed)} rows loaded, ${formatCount(state.rowsFailed)} rejected`;

  const onUpdate = (u: LiveUpdate) => {
    switch (u.kind) {
      case 'status':
      case 'progress': {
        const next = u.kind === 'status' ? u.upload : u.tick;
        if (next.status !== status && !line.tty) {
          if (next.status === 'uploaded') out.message('queued: waiting for a worker');
          if (next.status === 'processing') out.message('processing');
        }
        status = next.status;
        if (status === 'processing') processingSeenAt ??= Date.now();
        state = { rowsProcessed: next.rowsProcessed, rowsFailed: next.rowsFailed, progress: next.progress };
        if (u.kind === 'progress' && typeof u.tick.rowsPerSecond === 'number') serverRate = u.tick.rowsPerSecond;
        meter.add(Date.now(), next.rowsProcessed + next.rowsFailed);
        if (status === 'uploaded' || status === 'processing') line.update(render(), plain);
        return;
      }
      case 'reconnecting':
        line.breakLine();
        out.message(`progress stream dropped (${u.reason}); reconnecting (${u.attempt})…`);
        return;
      case 'polling':
        line.breakLine();
        out.message('this service has no live progress route; polling the status instead');
        return;
    }
  };

  let final;
  try {
    final = await followUpload(client, uploadId, onUpdate);
  } catch (err) {
    line.breakLine();
    out.message(`the upload goes on at the service: stream-api status ${uploadId}`);
    throw err;
  }
  if (final.status === 'completed') state = { rowsProcessed: final.rowsProcessed, rowsFailed: final.rowsFailed, progress: 1 };
  line.done(status === 'processing' || final.status === 'completed' ? render() : undefined);

  const now = Date.now();
  const summary = summarize(final, {
    uploadMs: timing.uploadMs,
    elapsedMs: now - timing.commandStartedAt,
    waitedMs: now - waitStartedAt,
    observedProcessingMs: processingSeenAt === null ? null : now - processingSeenAt,
  });
  out.result(summary, () => describeSummary(summary));
  if (final.status === 'failed') {
    const error = final.error ?? { code: null, message: 'no reason recorded' };
    out.message(`upload failed: ${error.code ?? 'error'}: ${error.message}`);
    return EXIT_FAILED;
  }
  return EXIT_OK;
}
