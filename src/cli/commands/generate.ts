// `stream-api generate`: a deterministic webhook_events CSV for trying the service at any size, e.g. the
// specification's acceptance test: `stream-api generate --rows 5000000 --out large.csv` (≈ 1 GB).
import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { createGzip } from 'node:zlib';
import { webhookEventsStream } from '../../datagen/webhook-events.ts';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError } from '../client/errors.ts';
import { intFlag } from './common.ts';

export const GENERATE_USAGE = `  generate --rows N [--seed S] [--bad-ratio R] [--gzip] [--out FILE]
                                             a deterministic webhook_events CSV on stdout (or FILE); R of the
                                             rows (0–1) broken in ways the loader rejects; --gzip compresses it
`;

/** Exit codes: 0 written, 1 the output could not be written, 2 bad flags. */
export async function generateCommand(argv: string[]): Promise<number> {
  let opts;
  try {
    opts = parseGenerateArgs(argv);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\nusage:\n${GENERATE_USAGE}`);
    return EXIT_USAGE;
  }
  let bad = 0;
  const source = webhookEventsStream({ rows: opts.rows, seed: opts.seed, badRatio: opts.badRatio, onBadRow: () => bad++ });
  const out = opts.out ? createWriteStream(opts.out) : process.stdout;
  try {
    await (opts.gzip ? pipeline(source, createGzip(), out) : pipeline(source, out));
  } catch (err) {
    // A reader that has seen enough (`| head`) is not a failure.
    if ((err as NodeJS.ErrnoException).code === 'EPIPE') return EXIT_OK;
    process.stderr.write(`generate: ${(err as Error).message}\n`);
    return EXIT_FAILED;
  }
  if (opts.out) process.stderr.write(`wrote ${opts.rows} rows (${bad} broken) to ${opts.out}\n`);
  return EXIT_OK;
}

interface GenerateArgs {
  rows: number;
  seed: number;
  badRatio: number;
  gzip: boolean;
  out: string | undefined;
}

function parseGenerateArgs(argv: string[]): GenerateArgs {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        rows: { type: 'string' },
        seed: { type: 'string' },
        'bad-ratio': { type: 'string' },
        gzip: { type: 'boolean', default: false },
        out: { type: 'string' },
      },
      strict: true,
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.rows === undefined) throw new UsageError('--rows N is required');
  const rows = intFlag('rows', values.rows, 0, Number.MAX_SAFE_INTEGER)!;
  const seed = intFlag('seed', values.seed, 0, 2 ** 31 - 1) ?? 42;
  const rawRatio = values['bad-ratio'] ?? '0';
  const badRatio = Number(rawRatio);
  if (rawRatio.trim() === '' || !(badRatio >= 0 && badRatio <= 1)) {
    throw new UsageError('--bad-ratio must be a number from 0 to 1');
  }
  return { rows, seed, badRatio, gzip: values.gzip ?? false, out: values.out };
}
