// The stream-api command: serve, migrate, keys, tenants, datasets, and the HTTP client commands.
// Service modules (pg, the AWS SDK, graphile-worker, embedded servers) are imported only by the
// commands that need them, so client commands start in a fraction of the time.
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, type Role } from '../config.ts';
import { createLogger } from '../logger.ts';
import type { DatabaseRuntime } from '../runtime.ts';
import { MigrationHistoryError } from '../db/migration-plan.ts';
import { StartupError } from '../startup-error.ts';
import { revokeKeyCommand } from './keys.ts';
import { TENANTS_USAGE, tenantsCommand } from './tenants.ts';
import { DATASETS_USAGE, datasetsCommand } from './datasets.ts';
import { CLIENT_COMMANDS, CLIENT_USAGE } from './commands/index.ts';
import { generateCommand, GENERATE_USAGE } from './commands/generate.ts';

const USAGE = `usage: stream-api <command>

  serve [--role all|api|worker|dispatcher]   run the service (default role: all)
  migrate                                    apply database migrations and exit
  keys create --tenant NAME                  create an API key (and the tenant if needed); prints only the key
  keys revoke KEY                            revoke an API key, its tokens and the live streams they opened
${TENANTS_USAGE}${DATASETS_USAGE}${GENERATE_USAGE}${CLIENT_USAGE}`;

const ROLES: readonly Role[] = ['all', 'api', 'worker', 'dispatcher'];

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve':
      return serveCommand(rest);
    case 'migrate':
      return withRuntime(async (rt) => {
        const { migrate } = await import('../db/migrate.ts');
        const applied = await migrate(rt.pool);
        process.stderr.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'database is up to date\n');
      });
    case 'keys':
      return keysCommand(rest);
    case 'tenants':
      return tenantsCommand(rest, withRuntime);
    case 'datasets':
      return datasetsCommand(rest, withRuntime);
    case 'generate':
      return generateCommand(rest);
    case 'upload':
    case 'status':
    case 'list':
    case 'errors':
    case 'retry':
    case 'remove-rows':
    case 'deliveries':
    case 'redeliver':
    case 'endpoints':
      return CLIENT_COMMANDS[command]!(rest);
    case undefined:
    case 'help':
    case '--help':
      process.stdout.write(USAGE);
      return command ? 0 : 2;
    default:
      process.stderr.write(`unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}

async function serveCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { role: { type: 'string', default: 'all' } } });
  const role = values.role as Role;
  if (!ROLES.includes(role)) {
    process.stderr.write(`--role must be one of ${ROLES.join(', ')}\n`);
    return 2;
  }
  const { serve } = await import('../server.ts');
  // Listening from the start: a Ctrl-C while the embedded servers start up waits for the start to
  // finish, then shuts down what it started, instead of exiting and leaving them behind.
  const signalled = new Promise<string>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  const service = await serve(loadConfig(), role, (line) => process.stdout.write(line + '\n'));
  const signal = await signalled;
  process.stderr.write(`${signal}: shutting down\n`);
  try {
    await service.stop();
  } catch (err) {
    process.stderr.write(`shutdown failed: ${String(err)}\n`);
  }
  return 0;
}

async function keysCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === 'revoke' && rest.length === 1) return revokeKeyCommand(rest[0]!, withRuntime);
  if (sub !== 'create') {
    process.stderr.write(`usage: stream-api keys create --tenant NAME | keys revoke KEY\n`);
    return 2;
  }
  const { values } = parseArgs({ args: rest, options: { tenant: { type: 'string' } } });
  if (!values.tenant) {
    process.stderr.write('--tenant NAME is required\n');
    return 2;
  }
  const tenantName = values.tenant;
  return withRuntime(async (rt) => {
    const { migrate } = await import('../db/migrate.ts');
    const { createApiKey, ensureTenant } = await import('../tenants/tenants.repository.ts');
    await migrate(rt.pool);
    const tenant = await ensureTenant(rt.db, tenantName);
    process.stdout.write((await createApiKey(rt.db, tenant.id)) + '\n');
  });
}

/**
 * Commands that need only the database: they use the embedded PostgreSQL a running `serve` started
 * (or start one and stop it after), and never start an object store. Logs go to stderr so stdout
 * carries only the command's result. A Ctrl-C lets the command finish its cleanup first.
 */
async function withRuntime(fn: (rt: DatabaseRuntime) => Promise<void>): Promise<number> {
  const { openDatabase } = await import('../runtime.ts');
  const config = loadConfig();
  // Commands other than serve are quiet unless LOG_LEVEL asks for more than the default.
  const logger = createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel, 'stderr');
  let interrupted: string | null = null;
  const note = (signal: string) => () => {
    interrupted = signal;
    process.stderr.write(`${signal}: stopping after clean-up\n`);
  };
  process.once('SIGINT', note('SIGINT'));
  process.once('SIGTERM', note('SIGTERM'));
  const rt = await openDatabase(config, logger, 'stream-api:cli');
  try {
    if (interrupted) return 130;
    await fn(rt);
    return 0;
  } finally {
    await rt.close();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof ConfigError) process.stderr.write(`${err.message}\n`);
    else if (err instanceof StartupError || err instanceof MigrationHistoryError) process.stderr.write(`stream-api: ${err.message}\n`);
    else process.stderr.write(`stream-api: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
