// `errors ID [--csv]`: the rejected rows of an upload — a table (or JSON), or the fixable CSV as it is.
import { pipeline } from 'node:stream/promises';
import { UsageError } from '../client/errors.ts';
import { table } from '../client/output.ts';
import { runCommand } from './common.ts';

interface RejectedRow {
  line: number;
  column: string | null;
  code: string;
  message: string;
  raw: string;
}

interface ErrorsPage {
  uploadId: string;
  rowsFailed: number;
  items: RejectedRow[];
  nextCursor: string | null;
}

export function errorsCommand(argv: string[]): Promise<number> {
  const spec = { usage: 'errors ID [--csv]', options: { csv: { type: 'boolean', default: false } }, positionals: ['ID'] } as const;
  return runCommand(argv, spec, async ({ values, args, out, client }) => {
    const path = `/uploads/${encodeURIComponent(args[0]!)}/errors`;
    if (values.csv) {
      if (out.json) throw new UsageError('--csv and --json are exclusive');
      // Streamed through: the CSV holds every rejected line and may be large.
      const res = await client.open('GET', `${path}.csv`, { headers: { accept: 'text/csv' } });
      await pipeline(res, process.stdout, { end: false }).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'EPIPE') throw err; // `| head`: the reader has all it wanted
      });
      return 0;
    }
    // The service caps what it keeps per upload, so every page fits in memory.
    let page = await client.json<ErrorsPage>('GET', path, { query: { limit: 1000 } });
    const items = [...page.items];
    while (page.nextCursor !== null) {
      page = await client.json<ErrorsPage>('GET', path, { query: { limit: 1000, cursor: page.nextCursor } });
      items.push(...page.items);
    }
    out.result({ uploadId: page.uploadId, rowsFailed: page.rowsFailed, items, nextCursor: null }, () => {
      if (items.length === 0) return page.rowsFailed === 0 ? 'no rejected rows' : `${page.rowsFailed} rows rejected; none kept`;
      const kept = items.length < page.rowsFailed ? `\n(${items.length} of ${page.rowsFailed} rejected rows kept)` : '';
      return table(['LINE', 'COLUMN', 'CODE', 'MESSAGE'], items.map((r) => [String(r.line), r.column ?? '', r.code, r.message])) + kept;
    });
    return 0;
  });
}
