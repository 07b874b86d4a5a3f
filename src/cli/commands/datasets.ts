// `datasets list`, `datasets show NAME` and `datasets infer FILE [--name N] [--apply]`: the tenant's datasets
// over HTTP, and a definition proposed from the start of a local CSV file (POST /datasets/infer), printed as
// JSON ready for `datasets apply` / POST /datasets — or created at once with --apply.
import { open } from 'node:fs/promises';
import path from 'node:path';
import { UsageError } from '../client/errors.ts';
import { fields, table } from '../client/output.ts';
import { runCommand } from './common.ts';

interface ColumnBody {
  name: string;
  type: string;
  required?: boolean;
  default?: string;
  aliases?: string[];
}

interface DatasetBody {
  name: string;
  builtIn: boolean;
  version: number | null;
  table: string;
  columns: ColumnBody[];
  key: string[] | null;
  createdAt: string | null;
  updatedAt: string | null;
}

interface InferBody {
  definition: { name: string; columns: ColumnBody[]; format?: Record<string, string> };
  columns: { name: string; header: string; type: string; required: boolean; values: number; empty: number; samples: string[] }[];
  dialect: Record<string, unknown>;
  sampledRows: number;
  sampleBytes: number;
  note: string;
  warnings: string[];
}

/** Bytes of the file sent: the service judges the first MiB; one byte more tells it the file goes on. */
const SAMPLE_BYTES = 1024 * 1024;

export const DATASETS_CLIENT_USAGE = `  datasets list                                         the tenant's datasets (and the built-in ones)
  datasets show NAME                                    one dataset: its table and columns
  datasets infer FILE [--name N] [--apply]              propose a definition from the file's first MiB (JSON on stdout,
                                                        ready for datasets apply); --apply creates it (POST /datasets)
`;

/** `datasets <sub>` commands that talk to the service (`datasets apply` is an admin command: src/cli/datasets.ts). */
export const DATASETS_CLIENT_COMMANDS: Record<string, (argv: string[]) => Promise<number>> = {
  list: (argv) => datasetsListCommand(argv),
  show: (argv) => datasetsShowCommand(argv),
  infer: (argv) => datasetsInferCommand(argv),
};

export function datasetsListCommand(argv: string[]): Promise<number> {
  return runCommand(argv, { usage: 'datasets list', options: {}, positionals: [] }, async ({ out, client }) => {
    const { items } = await client.json<{ items: DatasetBody[] }>('GET', '/datasets');
    out.result({ items }, () =>
      table(
        ['NAME', 'VERSION', 'COLUMNS', 'TABLE'],
        items.map((d) => [d.name, d.builtIn ? 'built-in' : String(d.version), String(d.columns.length), d.table]),
      ),
    );
    return 0;
  });
}

export function datasetsShowCommand(argv: string[]): Promise<number> {
  return runCommand(argv, { usage: 'datasets show NAME', options: {}, positionals: ['NAME'] }, async ({ args, out, client }) => {
    const d = await client.json<DatasetBody>('GET', `/datasets/${encodeURIComponent(args[0]!)}`);
    out.result(d, () =>
      [
        fields([
          ['dataset', d.name],
          ['version', d.builtIn ? 'built-in' : String(d.version)],
          ['table', d.table],
          ['key', d.key?.join(', ') ?? null],
          ['updated', d.updatedAt],
        ]),
        '',
        table(
          ['COLUMN', 'TYPE', 'REQUIRED', 'DEFAULT', 'ALIASES'],
          d.columns.map((c) => [c.name, c.type, c.required ? 'yes' : '', c.default ?? '', (c.aliases ?? []).join(', ')]),
        ),
      ].join('\n'),
    );
    return 0;
  });
}

export function datasetsInferCommand(argv: string[]): Promise<number> {
  const spec = {
    usage: 'datasets infer FILE [--name N] [--apply]',
    options: { name: { type: 'string' }, apply: { type: 'boolean', default: false } },
    positionals: ['FILE'],
  } as const;
  return runCommand(argv, spec, async ({ values, args, out, client }) => {
    const file = args[0]!;
    const sample = await readStart(file, SAMPLE_BYTES + 1);
    const name = values.name ?? path.basename(file).replace(/(\.(csv|tsv|txt|gz))+$/i, '');
    const inferred = await client.json<InferBody>('POST', '/datasets/infer', {
      query: { name },
      headers: { 'content-type': 'text/csv' },
      body: sample,
    });
    let created: DatasetBody | null = null;
    if (values.apply) created = await client.json<DatasetBody>('POST', '/datasets', { body: inferred.definition });
    out.result(created ? { ...inferred, created } : inferred, () => `${JSON.stringify(inferred.definition, null, 2)}`);
    if (!out.json) {
      const d = inferred.dialect;
      out.message(
        `${file}: ${inferred.sampledRows} rows judged (${inferred.sampleBytes} bytes); delimiter ${JSON.stringify(d.delimiter)}, ` +
          `${String(d.encoding)}, quotes ${String(d.quotes)}, dates ${String(d.dateFormat)}, decimal ${JSON.stringify(d.decimalSeparator)}`,
      );
      out.message(
        table(
          ['COLUMN', 'HEADER', 'TYPE', 'REQUIRED', 'EMPTY', 'SAMPLES'],
          inferred.columns.map((c) => [c.name, c.header, c.type, c.required ? 'yes' : '', `${c.empty}/${c.values}`, c.samples.slice(0, 3).join(' | ').slice(0, 60)]),
        ),
      );
      out.message(`note: ${inferred.note}`);
      for (const w of inferred.warnings) out.message(`warning: ${w}`);
      if (created) out.message(`${created.name} created version ${created.version}: ${created.table}`);
    }
    return 0;
  });
}

/** The first `bytes` bytes of `file` (fewer when it is shorter); a UsageError when it cannot be read. */
async function readStart(file: string, bytes: number): Promise<Buffer> {
  try {
    const handle = await open(file, 'r');
    try {
      const buf = Buffer.alloc(bytes);
      let length = 0;
      for (;;) {
        const { bytesRead } = await handle.read(buf, length, bytes - length, length);
        if (bytesRead === 0) break;
        length += bytesRead;
        if (length === bytes) break;
      }
      return buf.subarray(0, length);
    } finally {
      await handle.close();
    }
  } catch (err) {
    throw new UsageError(`cannot read ${file}: ${(err as Error).message}`);
  }
}
