// What every client command shares: the common flags, parsing, the API client, and one place that
// turns what went wrong into a message and an exit code (0 ok, 1 failed / API error, 2 usage).
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ApiClient } from '../client/api.ts';
import { loadClientConfig } from '../client/config.ts';
import { ApiError, ConnectionError, EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError } from '../client/errors.ts';
import { Output, type Streams } from '../client/output.ts';

type Options = NonNullable<ParseArgsConfig['options']>;

export const COMMON_OPTIONS = {
  url: { type: 'string' },
  key: { type: 'string' },
  json: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const satisfies Options;

export const COMMON_USAGE = `  common flags: --url URL (or STREAM_API_URL, default http://localhost:3002), --key KEY (or STREAM_API_KEY),
                --json (machine-readable result on stdout; messages on stderr)`;

export interface CommandSpec<O extends Options> {
  /** e.g. `status ID` */
  usage: string;
  options: O;
  /** names of the required positional arguments, in order */
  positionals: readonly string[];
}

type Values<O extends Options> = ReturnType<typeof parseArgs<{ options: O & typeof COMMON_OPTIONS; allowPositionals: true; strict: true }>>['values'];

export interface CommandContext<O extends Options> {
  values: Values<O>;
  args: string[];
  out: Output;
  client: ApiClient;
}

export async function runCommand<O extends Options>(
  argv: string[],
  spec: CommandSpec<O>,
  body: (ctx: CommandContext<O>) => Promise<number>,
): Promise<number> {
  const streams: Streams = { stdout: process.stdout, stderr: process.stderr };
  const usage = `usage: stream-api ${spec.usage}\n${COMMON_USAGE}\n`;
  let out = new Output(argv.includes('--json'), streams);
  try {
    let parsed;
    try {
      parsed = parseArgs({
        args: argv,
        options: { ...spec.options, ...COMMON_OPTIONS } as O & typeof COMMON_OPTIONS,
        allowPositionals: true,
        strict: true,
      });
    } catch (err) {
      throw new UsageError(err instanceof Error ? err.message : String(err));
    }
    const values = parsed.values as Values<O> & { url?: string; key?: string; json: boolean; help: boolean };
    if (values.help) {
      streams.stdout.write(usage);
      return EXIT_OK;
    }
    out = new Output(values.json, streams);
    const missing = spec.positionals.slice(parsed.positionals.length);
    if (missing.length > 0) throw new UsageError(`missing ${missing.join(', ')}`);
    const extra = parsed.positionals.slice(spec.positionals.length);
    if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
    const client = new ApiClient(loadClientConfig({ url: values.url, key: values.key }));
    return await body({ values, args: parsed.positionals, out, client });
  } catch (err) {
    return report(err, out, usage);
  }
}

function report(err: unknown, out: Output, usage: string): number {
  if (err instanceof UsageError) {
    out.message(`stream-api: ${err.message}\n\n${usage.trimEnd()}`);
    return EXIT_USAGE;
  }
  if (err instanceof ApiError || err instanceof ConnectionError) {
    if (out.json) {
      const status = err instanceof ApiError ? { status: err.status } : {};
      out.result({ error: { code: err.code, message: err.message, ...status } }, () => null);
    }
    out.message(`error: ${err.code}: ${err.message}`);
    return EXIT_FAILED;
  }
  out.message(`error: ${err instanceof Error ? err.message : String(err)}`);
  return EXIT_FAILED;
}

/** A whole number within [min, max], for flags like --limit. */
export function intFlag(name: string, raw: string | undefined, min: number, max: number): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`--${name} must be a whole number from ${min} to ${max}`);
  }
  return n;
}
