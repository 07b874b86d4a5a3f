// `endpoints list|show|create|enable|disable|rotate-secret|recover`: a tenant's webhook endpoints over the
// HTTP API (/endpoints, /endpoints/:id/recover, /operations/:id). Exit codes as every client command
// (0 ok, 1 API error or a recovery that ended in error, 2 usage).
import { setTimeout as sleep } from 'node:timers/promises';
import type { ApiClient } from '../client/api.ts';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError } from '../client/errors.ts';
import { fields, table, type Output } from '../client/output.ts';
import { intFlag, runCommand } from './common.ts';

interface Health {
  /** closed | open | disabled */
  state: string;
  lastSuccessAt: string | null;
  consecutiveFailures: number;
  attemptsLastHour: number;
  /** failed attempts / attempts in the last hour; null: no attempt */
  failureRateLastHour: number | null;
  disabledReason: string | null;
}

interface Endpoint {
  id: string;
  url: string;
  description: string;
  eventTypes: string[];
  channel: string;
  enabled: boolean;
  rateLimitPerSecond: number | null;
  createdAt: string;
  health: Health;
}

/** A long-running operation (AIP-151), as GET /operations/:id answers it. */
interface Operation {
  id: string;
  done: boolean;
  metadata: { endpointId: string; since: string; until: string; queued: number; finishedAt: string | null };
  result?: { queued: number };
  error?: { code: string; message: string };
}

const CHANNELS = ['webhook', 'slack', 'email'];
const API_PAGE = 100;
const POLL_MS = 500;

export const ENDPOINTS_USAGE = `  endpoints list [--limit N] [--cursor C]               endpoints with their health (closed/open/disabled, 1 h success rate)
  endpoints show ID                                     one endpoint
  endpoints create URL [--event-type T]... [--channel webhook|slack|email] [--description D] [--rate-limit N] [--disabled]
                                                        register an endpoint; prints its id and signing secret
  endpoints enable|disable ID                           start / stop sending to it (pending deliveries wait)
  endpoints rotate-secret ID                            new signing secret (the old one signs 24 h more)
  endpoints recover ID --since ISO [--until ISO] [--wait]
                                                        queue again what it missed in the window; --wait follows it
`;

const SUBCOMMANDS: Record<string, (argv: string[]) => Promise<number>> = {
  list: listEndpoints,
  show: showEndpoint,
  create: createEndpoint,
  enable: (argv) => setEnabled(argv, true),
  disable: (argv) => setEnabled(argv, false),
  'rotate-secret': rotateSecret,
  recover: recoverEndpoint,
};

export function endpointsCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'help' || sub === '--help' || sub === '-h') {
    process.stdout.write(`usage:\n${ENDPOINTS_USAGE}`);
    return Promise.resolve(EXIT_OK);
  }
  const run = sub === undefined ? undefined : SUBCOMMANDS[sub];
  if (!run) {
    process.stderr.write(`${sub === undefined ? 'missing subcommand' : `unknown subcommand "${sub}"`}\n\nusage:\n${ENDPOINTS_USAGE}`);
    return Promise.resolve(EXIT_USAGE);
  }
  return run(rest);
}

const path = (id: string, tail = '') => `/endpoints/${encodeURIComponent(id)}${tail}`;

function listEndpoints(argv: string[]): Promise<number> {
  const spec = { usage: 'endpoints list [--limit N] [--cursor C]', options: { limit: { type: 'string' }, cursor: { type: 'string' } }, positionals: [] } as const;
  return runCommand(argv, spec, async ({ values, out, client }) => {
    const limit = intFlag('limit', values.limit, 1, 10_000) ?? 100;
    const items: Endpoint[] = [];
    let cursor = values.cursor ?? null;
    do {
      const page = await client.json<{ items: Endpoint[]; nextCursor: string | null }>('GET', '/endpoints', {
        query: { limit: Math.min(API_PAGE, limit - items.length), cursor: cursor ?? undefined },
      });
      items.push(...page.items);
      cursor = page.nextCursor;
    } while (cursor !== null && items.length < limit);
    out.result({ items, nextCursor: cursor }, () =>
      items.length === 0
        ? 'no endpoints'
        : table(
            ['ID', 'STATE', 'SUCCESS 1H', 'FAILURES', 'LAST SUCCESS', 'CHANNEL', 'EVENTS', 'URL'],
            items.map((e) => [
              e.id, e.health.state, successRate(e.health), String(e.health.consecutiveFailures), e.health.lastSuccessAt ?? '—',
              e.channel, e.eventTypes.length === 0 ? 'all' : e.eventTypes.join(','), e.url,
            ]),
          ),
    );
    if (cursor !== null && !out.json) out.message(`more: stream-api endpoints list --cursor ${cursor}`);
    return EXIT_OK;
  });
}

function showEndpoint(argv: string[]): Promise<number> {
  return runCommand(argv, { usage: 'endpoints show ID', options: {}, positionals: ['ID'] }, async ({ args, out, client }) => {
    const endpoint = await client.json<Endpoint>('GET', path(args[0]!));
    out.result(endpoint, () => describeEndpoint(endpoint));
    return EXIT_OK;
  });
}

function createEndpoint(argv: string[]): Promise<number> {
  const spec = {
    usage: 'endpoints create URL [--event-type T]... [--channel webhook|slack|email] [--description D] [--rate-limit N] [--disabled]',
    options: {
      'event-type': { type: 'string', multiple: true },
      channel: { type: 'string' },
      description: { type: 'string' },
      'rate-limit': { type: 'string' },
      disabled: { type: 'boolean', default: false },
    },
    positionals: ['URL'],
  } as const;
  return runCommand(argv, spec, async ({ values, args, out, client }) => {
    if (values.channel !== undefined && !CHANNELS.includes(values.channel)) throw new UsageError(`--channel must be one of ${CHANNELS.join(', ')}`);
    const body = {
      url: args[0]!,
      eventTypes: values['event-type'] ?? [],
      ...(values.channel !== undefined && { channel: values.channel }),
      ...(values.description !== undefined && { description: values.description }),
      ...(values['rate-limit'] !== undefined && { rateLimitPerSecond: intFlag('rate-limit', values['rate-limit'], 1, 10_000) }),
      ...(values.disabled && { enabled: false }),
    };
    const created = await client.json<Endpoint & { secret: string }>('POST', '/endpoints', { body });
    out.result(created, () => fields([['endpoint', created.id], ['secret', created.secret]]));
    if (!out.json) out.message('keep the secret: receivers verify its signatures with it (again at GET /endpoints/:id/secret)');
    return EXIT_OK;
  });
}

function setEnabled(argv: string[], enabled: boolean): Promise<number> {
  const name = enabled ? 'enable' : 'disable';
  return runCommand(argv, { usage: `endpoints ${name} ID`, options: {}, positionals: ['ID'] }, async ({ args, out, client }) => {
    const endpoint = await client.json<Endpoint>('PATCH', path(args[0]!), { body: { enabled } });
    out.result(endpoint, () => `endpoint ${endpoint.id} ${name}d: ${endpoint.health.state}`);
    return EXIT_OK;
  });
}

function rotateSecret(argv: string[]): Promise<number> {
  return runCommand(argv, { usage: 'endpoints rotate-secret ID', options: {}, positionals: ['ID'] }, async ({ args, out, client }) => {
    const secret = await client.json<{ secret: string; previousSecretExpiresAt: string | null }>('POST', path(args[0]!, '/secret/rotate'));
    out.result(secret, () => fields([['secret', secret.secret], ['previous secret signs until', secret.previousSecretExpiresAt]]));
    return EXIT_OK;
  });
}

function recoverEndpoint(argv: string[]): Promise<number> {
  const spec = {
    usage: 'endpoints recover ID --since ISO [--until ISO] [--wait]',
    options: { since: { type: 'string' }, until: { type: 'string' }, wait: { type: 'boolean', default: false } },
    positionals: ['ID'],
  } as const;
  return runCommand(argv, spec, async ({ values, args, out, client }) => {
    if (values.since === undefined) throw new UsageError('missing --since (RFC 3339, such as 2026-01-31T12:00:00Z)');
    const body = { since: values.since, ...(values.until !== undefined && { until: values.until }) };
    const started = await client.json<Operation>('POST', path(args[0]!, '/recover'), { body });
    out.message(`recovery started: operation ${started.id} (${started.metadata.since} … ${started.metadata.until})`);
    const operation = values.wait ? await followOperation(client, out, started) : started;
    out.result(operation, () => describeOperation(operation));
    return operation.error ? EXIT_FAILED : EXIT_OK;
  });
}

/** Polls GET /operations/:id until done, saying on stderr when the count of queued deliveries moves. */
async function followOperation(client: ApiClient, out: Output, operation: Operation): Promise<Operation> {
  let current = operation;
  let reported = current.metadata.queued;
  while (!current.done) {
    await sleep(POLL_MS);
    current = await client.json<Operation>('GET', `/operations/${encodeURIComponent(current.id)}`);
    if (current.metadata.queued !== reported && !current.done) out.message(`queued so far: ${current.metadata.queued}`);
    reported = current.metadata.queued;
  }
  return current;
}

function describeOperation(op: Operation): string {
  return fields([
    ['operation', op.id],
    ['endpoint', op.metadata.endpointId],
    ['window', `${op.metadata.since} … ${op.metadata.until}`],
    ['done', op.done ? `yes, ${op.metadata.finishedAt ?? ''}`.trim() : 'no (GET /operations/:id, or --wait)'],
    ['queued', op.result ? String(op.result.queued) : op.done ? null : String(op.metadata.queued)],
    ['error', op.error ? `${op.error.code}: ${op.error.message}` : null],
  ]);
}

function describeEndpoint(e: Endpoint): string {
  return fields([
    ['endpoint', e.id],
    ['url', e.url],
    ['description', e.description || null],
    ['channel', e.channel],
    ['event types', e.eventTypes.length === 0 ? 'all' : e.eventTypes.join(', ')],
    ['rate limit', e.rateLimitPerSecond === null ? 'none' : `${e.rateLimitPerSecond}/s`],
    ['state', e.health.state + (e.health.disabledReason ? ` (${e.health.disabledReason})` : '')],
    ['success 1 h', `${successRate(e.health)} of ${e.health.attemptsLastHour} attempt${e.health.attemptsLastHour === 1 ? '' : 's'}`],
    ['failures', `${e.health.consecutiveFailures} in a row`],
    ['last success', e.health.lastSuccessAt ?? 'never'],
    ['created', e.createdAt],
  ]);
}

/** Successful share of the last hour's attempts, as a whole percentage; — without an attempt. */
function successRate(h: Health): string {
  return h.failureRateLastHour === null ? '—' : `${Math.round((1 - h.failureRateLastHour) * 100)}%`;
}
