// `stream-api datasets apply FILE --tenant NAME`: an operator's (or a deploy script's) way to define a
// dataset from a JSON file — the same definition as POST /datasets, applied straight to the database
// like the other admin commands. Idempotent: the same file again changes nothing (the version stays).
// JSON only: no YAML parser is a dependency of the project. `datasets list|show|infer` are client commands
// over HTTP (src/cli/commands/datasets.ts).
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { Value } from '@sinclair/typebox/value';
import type { DatabaseRuntime } from '../runtime.ts';
import { DATASETS_CLIENT_COMMANDS, DATASETS_CLIENT_USAGE } from './commands/datasets.ts';

export const DATASETS_USAGE = `  datasets apply FILE --tenant NAME          create or change (additively) the dataset defined in the JSON file
`;

type WithRuntime = (fn: (rt: DatabaseRuntime) => Promise<void>) => Promise<number>;

/** Exit code 0 when applied (or already so), 1 when the file or the change is refused, 2 on bad usage. */
export async function datasetsCommand(args: string[], withRuntime: WithRuntime): Promise<number> {
  const [sub, ...rest] = args;
  const client = sub === undefined ? undefined : DATASETS_CLIENT_COMMANDS[sub];
  if (client) return client(rest);
  const { values, positionals } = parseArgs({ args: rest, options: { tenant: { type: 'string' } }, allowPositionals: true });
  if (sub !== 'apply' || positionals.length !== 1 || !values.tenant) {
    process.stderr.write(`usage:\n${DATASETS_USAGE}${DATASETS_CLIENT_USAGE}`);
    return 2;
  }
  const [file] = positionals as [string];
  const tenantName = values.tenant;
  const { DatasetBody, DefinitionError, normaliseDefinition } = await import('../datasets/definition.ts');
  let input: unknown;
  try {
    input = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    process.stderr.write(`${file}: not a readable JSON file (${(err as Error).message})\n`);
    return 1;
  }
  if (!Value.Check(DatasetBody, input)) {
    const first = Value.Errors(DatasetBody, input).First();
    process.stderr.write(`${file}: ${first ? `${first.path || '/'} ${first.message}` : 'not a dataset definition'}\n`);
    return 1;
  }
  let spec;
  try {
    spec = normaliseDefinition(input);
  } catch (err) {
    if (!(err instanceof DefinitionError)) throw err;
    process.stderr.write(`${file}: ${err.message}\n`);
    return 1;
  }
  let refused: string | null = null;
  const code = await withRuntime(async (rt) => {
    const { migrate } = await import('../db/migrate.ts');
    const { applyDataset } = await import('../datasets/datasets.repository.ts');
    const { AppError } = await import('../errors.ts');
    await migrate(rt.pool);
    const tenant = await rt.db.selectFrom('tenants').select('id').where('name', '=', tenantName).executeTakeFirst();
    if (!tenant) {
      refused = `tenant "${tenantName}" not found`;
      return;
    }
    try {
      const { outcome, row } = await applyDataset(rt.db, tenant.id, spec, { createOnly: false });
      // stdout: one line a script can read
      process.stdout.write(`${row.name} ${outcome} version ${row.version}\n`);
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      refused = err.message;
    }
  });
  if (code === 0 && refused !== null) {
    process.stderr.write(`${refused}\n`);
    return 1;
  }
  return code;
}
