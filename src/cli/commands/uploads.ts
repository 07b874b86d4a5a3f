// `status ID` and `list`: an upload as the API shows it, and the tenant's uploads newest first;
// `remove-rows ID`: undo a load (DELETE /uploads/:id/rows).
import type { UploadBody } from '../client/events.ts';
import { UsageError } from '../client/errors.ts';
import { fields, table } from '../client/output.ts';
import { formatBytes, formatCount, formatPercent } from '../client/progress.ts';
import { describeBytes, describeFile } from '../client/summary.ts';
import { intFlag, runCommand } from './common.ts';

interface DeliverySummary {
  status: string;
  attempts: number;
  lastError: string | null;
}

export function statusCommand(argv: string[]): Promise<number> {
  return runCommand(argv, { usage: 'status ID', options: {}, positionals: ['ID'] }, async ({ args, out, client }) => {
    const upload = await client.json<UploadBody>('GET', `/uploads/${encodeURIComponent(args[0]!)}`);
    out.result(upload, () => describeUpload(upload));
    return 0;
  });
}

/** The answer of DELETE /uploads/:id/rows (src/uploads/remove-rows.ts). */
interface RowsRemoved {
  uploadId: string;
  dataset: string;
  rowsRemoved: number;
  rowsRemovedAt: string;
}

/** `remove-rows ID`: removes the rows an append loaded; a repeated call answers the first removal. */
export function removeRowsCommand(argv: string[]): Promise<number> {
  return runCommand(argv, { usage: 'remove-rows ID', options: {}, positionals: ['ID'] }, async ({ args, out, client }) => {
    const removed = await client.json<RowsRemoved>('DELETE', `/uploads/${encodeURIComponent(args[0]!)}/rows`);
    out.result(removed, () =>
      fields([
        ['upload', removed.uploadId],
        ['dataset', removed.dataset],
        ['removed', `${formatCount(removed.rowsRemoved)} rows`],
        ['at', removed.rowsRemovedAt],
      ]),
    );
    return 0;
  });
}

const STATUSES = ['uploaded', 'processing', 'completed', 'failed'];
/** The API's page size cap; a larger --limit follows the cursor. */
const API_PAGE = 100;

export function listCommand(argv: string[]): Promise<number> {
  const spec = {
    usage: 'list [--status uploaded|processing|completed|failed] [--limit N] [--cursor C]',
    options: { status: { type: 'string' }, limit: { type: 'string' }, cursor: { type: 'string' } },
    positionals: [],
  } as const;
  return runCommand(argv, spec, async ({ values, out, client }) => {
    if (values.status !== undefined && !STATUSES.includes(values.status)) {
      throw new UsageError(`--status must be one of ${STATUSES.join(', ')}`);
    }
    const limit = intFlag('limit', values.limit, 1, 10_000) ?? 20;
    const items: UploadBody[] = [];
    let cursor = values.cursor ?? null;
    do {
      const page = await client.json<{ items: UploadBody[]; nextCursor: string | null }>('GET', '/uploads', {
        query: { status: values.status, limit: Math.min(API_PAGE, limit - items.length), cursor: cursor ?? undefined },
      });
      items.push(...page.items);
      cursor = page.nextCursor;
    } while (cursor !== null && items.length < limit);

    out.result({ items, nextCursor: cursor }, () =>
      items.length === 0
        ? 'no uploads'
        : table(
            ['ID', 'STATUS', 'DATASET', 'ROWS', 'REJECTED', 'SIZE', 'CREATED', 'FILE'],
            items.map((u) => [
              u.uploadId, u.status, u.dataset, formatCount(u.rowsProcessed), formatCount(u.rowsFailed),
              `${formatBytes(u.sizeBytes)}${u.compression === 'gzip' ? ' gzip' : ''}`, u.createdAt ?? '', u.filename,
            ]),
          ),
    );
    if (cursor !== null && !out.json) out.message(`more: stream-api list --cursor ${cursor}`);
    return 0;
  });
}

export function describeUpload(u: UploadBody): string {
  const delivery = u.delivery as DeliverySummary | null | undefined;
  return fields([
    ['upload', u.uploadId],
    ['status', u.status],
    ['dataset', u.dataset],
    ['file', describeFile(u)],
    ['bytes', describeBytes(u)],
    ['rows', `${formatCount(u.rowsProcessed)} ${u.dryRun ? 'valid (dry run: none loaded)' : 'loaded'}, ${formatCount(u.rowsFailed)} rejected`],
    ['removed', typeof u.rowsRemovedAt === 'string' ? `${formatCount(Number(u.rowsRemoved ?? 0))} rows, ${u.rowsRemovedAt}` : null],
    ['progress', formatPercent(u.progress)],
    ['attempt', String(u.attempt)],
    ['error', u.error ? `${u.error.code ?? 'error'}: ${u.error.message}` : null],
    ['callback', typeof u.callbackUrl === 'string' ? u.callbackUrl : null],
    ['delivery', delivery ? `${delivery.status} (${delivery.attempts} attempt${delivery.attempts === 1 ? '' : 's'})${delivery.lastError ? ` — ${delivery.lastError}` : ''}` : null],
    ['created', u.createdAt],
    ['started', u.startedAt],
    ['completed', u.completedAt],
  ]);
}
