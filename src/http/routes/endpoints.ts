// /endpoints — where a tenant's events go: create, list, read, change, delete, and each endpoint's
// Standard Webhooks secret (read, rotate with an overlap). All scoped to the caller's tenant.
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AppError } from '../../errors.ts';
import {
  createEndpoint,
  deleteEndpoint,
  findEndpoint,
  listEndpoints,
  updateEndpoint,
  type EndpointChannel,
  type EndpointInput,
  type EndpointRow,
} from '../../notify/endpoints.repository.ts';
import { healthState } from '../../notify/breaker-policy.ts';
import { mailtoAddress } from '../../notify/channels/email.ts';
import { EVENT_TYPE_NAMES, type EventType } from '../../notify/event-types.ts';
import { findEndpointSecret, rotateEndpointSecret, ROTATION_OVERLAP_HOURS } from '../../notify/secrets.repository.ts';
import { allowListOf, checkUrl, MAX_URL_LENGTH, URL_REJECTION_TEXT, type AddressList } from '../../notify/ssrf.ts';
import type { AppDeps } from '../app.ts';
import { keysetPage, PageCursor, PageLimit, pageRequest } from '../pagination.ts';
import { errors } from '../schemas.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const Timestamp = Type.String({ format: 'date-time' });

const EventTypeName = Type.Union(EVENT_TYPE_NAMES.map((name) => Type.Literal(name)));
const fields = {
  url: Type.String({ minLength: 1, maxLength: MAX_URL_LENGTH, description: 'absolute http(s) URL, no credentials, not a private address; for channel email: mailto:someone@example.com' }),
  description: Type.String({ maxLength: 500 }),
  eventTypes: Type.Array(EventTypeName, { maxItems: EVENT_TYPE_NAMES.length, uniqueItems: true, description: 'the types it receives; empty: all (GET /event-types)' }),
  channel: Type.Union([Type.Literal('webhook'), Type.Literal('slack'), Type.Literal('email')], {
    description: 'webhook: Standard Webhooks, signed; slack: an incoming-webhook text; email: a plain-text mail through SMTP (needs SMTP_URL) to the mailto: url',
  }),
  enabled: Type.Boolean({ description: 'a disabled endpoint receives no new event; its pending deliveries wait' }),
  // One type list, not anyOf: Ajv's coercion would turn a refused 0 into the null branch (unlimited).
  rateLimitPerSecond: Type.Unsafe<number | null>({ type: ['integer', 'null'], minimum: 1, maximum: 10_000, description: 'stored; null: unlimited' }),
};

const CreateBody = Type.Object(
  {
    url: fields.url,
    description: Type.Optional(fields.description),
    eventTypes: Type.Optional(fields.eventTypes),
    channel: Type.Optional(fields.channel),
    enabled: Type.Optional(fields.enabled),
    rateLimitPerSecond: Type.Optional(fields.rateLimitPerSecond),
  },
  { additionalProperties: false },
);
const PatchBody = Type.Partial(Type.Object(fields), { additionalProperties: false });

const Health = Type.Object(
  {
    state: Type.Union([Type.Literal('closed'), Type.Literal('open'), Type.Literal('disabled')], {
      description: 'closed: deliveries flow; open: N failures in a row, deliveries wait for a successful probe; disabled: by the tenant or after failing for ENDPOINT_DISABLE_AFTER_HOURS',
    }),
    lastSuccessAt: Type.Union([Timestamp, Type.Null()]),
    consecutiveFailures: Type.Integer({ minimum: 0 }),
    failingSince: Type.Union([Timestamp, Type.Null()], { description: 'first failure of the current streak; auto-disable counts from it' }),
    nextProbeAt: Type.Union([Timestamp, Type.Null()], { description: 'while open: when the next probe may go' }),
    attemptsLastHour: Type.Integer({ minimum: 0 }),
    failureRateLastHour: Type.Union([Type.Number({ minimum: 0, maximum: 1 }), Type.Null()], { description: 'failed attempts / attempts in the last hour; null: no attempt' }),
    disabledReason: Type.Union([Type.String(), Type.Null()]),
  },
  { description: 'circuit breaker and failure figures, shared by all dispatchers' },
);

const EndpointBody = Type.Object({
  id: Type.String({ format: 'uuid' }),
  url: Type.String(),
  description: Type.String(),
  eventTypes: Type.Array(Type.String()),
  channel: Type.String({ description: 'webhook | slack | email' }),
  enabled: Type.Boolean(),
  rateLimitPerSecond: Type.Union([Type.Integer(), Type.Null()]),
  createdAt: Timestamp,
  updatedAt: Timestamp,
  health: Health,
});
const Secret = Type.String({ description: 'whsec_… — verify this endpoint’s webhooks with any Standard Webhooks library' });
const SecretBody = Type.Object({
  secret: Secret,
  previousSecretExpiresAt: Type.Union([Timestamp, Type.Null()], {
    description: `during a rotation overlap (${ROTATION_OVERLAP_HOURS} h) the previous secret signs too; null otherwise`,
  }),
});
const EndpointIdParams = Type.Object({ id: Type.String({ description: 'endpoint id (uuid)' }) });
const ListQuery = Type.Object({ limit: Type.Optional(PageLimit), cursor: Type.Optional(PageCursor) });

type IdParams = { Params: Static<typeof EndpointIdParams> };

/** A malformed id can name no endpoint: 404, like any id the caller cannot see. */
function endpointIdParam(request: FastifyRequest<IdParams>): string {
  const { id } = request.params;
  if (!UUID.test(id)) throw new AppError('not_found', 'endpoint not found');
  return id.toLowerCase();
}

/**
 * The url for the channel: for email, `mailto:` and one address (400 email_not_configured without
 * SMTP); otherwise the callbackUrl rules (ssrf.ts). The normalised url, or 400 invalid_endpoint_url saying why.
 */
function checkedUrl(raw: string, channel: EndpointChannel, allowed: AddressList, smtp: boolean): string {
  if (channel === 'email') {
    if (!smtp) throw new AppError('email_not_configured');
    const address = mailtoAddress(raw);
    if (address === null) throw new AppError('invalid_endpoint_url', 'url of an email endpoint must be mailto: and one address, such as mailto:ops@example.com');
    return `mailto:${address}`;
  }
  const checked = checkUrl(raw.trim(), allowed);
  if (!checked.ok) throw new AppError('invalid_endpoint_url', `url ${URL_REJECTION_TEXT[checked.reason]}`);
  return checked.url.href;
}

export async function endpointRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  const allowed = allowListOf(deps.config.webhook.allowedCidrs);
  const smtp = deps.config.smtp !== null;
  const notFound = () => new AppError('not_found', 'endpoint not found');

  const createSchema = {
    tags: ['endpoints'],
    summary: 'Register an endpoint; the answer carries its signing secret',
    body: CreateBody,
    response: { 201: Type.Composite([EndpointBody, Type.Object({ secret: Secret })]), ...errors(400, 401) },
  };
  app.post<{ Body: Static<typeof CreateBody> }>('/endpoints', { schema: createSchema }, async (request, reply) => {
    const body = request.body;
    const channel = body.channel ?? 'webhook';
    const input: EndpointInput = {
      url: checkedUrl(body.url, channel, allowed, smtp),
      description: body.description ?? '',
      eventTypes: (body.eventTypes ?? []) as EventType[],
      channel,
      enabled: body.enabled ?? true,
      rateLimitPerSecond: body.rateLimitPerSecond ?? null,
    };
    const row = await createEndpoint(deps.db, request.tenant.id, input);
    request.log.info({ endpointId: row.id }, 'endpoint created');
    return reply.status(201).header('location', `/endpoints/${row.id}`).send({ ...presentEndpoint(row), secret: row.secret });
  });

  const listSchema = {
    tags: ['endpoints'],
    summary: "The tenant's endpoints, newest first (keyset pagination with nextCursor)",
    querystring: ListQuery,
    response: { 200: Type.Object({ items: Type.Array(EndpointBody), nextCursor: Type.Union([Type.String(), Type.Null()]) }), ...errors(400, 401) },
  };
  app.get<{ Querystring: Static<typeof ListQuery> }>('/endpoints', { schema: listSchema }, async (request) =>
    keysetPage(pageRequest(request.query.limit, request.query.cursor), (page) => listEndpoints(deps.db, request.tenant.id, page), presentEndpoint),
  );

  const oneSchema = { tags: ['endpoints'], summary: 'One endpoint', params: EndpointIdParams, response: { 200: EndpointBody, ...errors(401, 404) } };
  app.get<IdParams>('/endpoints/:id', { schema: oneSchema }, async (request) => {
    const row = await findEndpoint(deps.db, request.tenant.id, endpointIdParam(request));
    if (!row) throw notFound();
    return presentEndpoint(row);
  });

  const patchSchema = {
    tags: ['endpoints'],
    summary: 'Change an endpoint (only the fields given); pending deliveries follow a new url or channel; enabled=true closes its breaker',
    params: EndpointIdParams,
    body: PatchBody,
    response: { 200: EndpointBody, ...errors(400, 401, 404) },
  };
  app.patch<IdParams & { Body: Static<typeof PatchBody> }>('/endpoints/:id', { schema: patchSchema }, async (request) => {
    const id = endpointIdParam(request);
    const { url, eventTypes, ...rest } = request.body ?? {};
    let checked: string | undefined;
    if (url !== undefined || rest.channel !== undefined) {
      // url and channel are judged together: a new channel must suit the url kept, a new url the channel kept
      const current = await findEndpoint(deps.db, request.tenant.id, id);
      if (!current) throw notFound();
      checked = checkedUrl(url ?? current.url, rest.channel ?? current.channel, allowed, smtp);
    }
    const patch: Partial<EndpointInput> = {
      ...rest,
      ...(checked !== undefined && { url: checked }),
      ...(eventTypes !== undefined && { eventTypes: eventTypes as EventType[] }),
    };
    const row = await updateEndpoint(deps.db, request.tenant.id, id, patch);
    if (!row) throw notFound();
    return presentEndpoint(row);
  });

  const deleteSchema = {
    tags: ['endpoints'],
    summary: 'Delete an endpoint: its pending deliveries are skipped, its delivery history is kept',
    params: EndpointIdParams,
    response: { 204: Type.Null(), ...errors(401, 404) },
  };
  app.delete<IdParams>('/endpoints/:id', { schema: deleteSchema }, async (request, reply) => {
    if (!(await deleteEndpoint(deps.db, request.tenant.id, endpointIdParam(request)))) throw notFound();
    return reply.status(204).send();
  });

  const secretSchema = {
    tags: ['endpoints'],
    summary: "The endpoint's signing secret",
    params: EndpointIdParams,
    response: { 200: SecretBody, ...errors(401, 404) },
  };
  app.get<IdParams>('/endpoints/:id/secret', { schema: secretSchema }, async (request) => {
    const secret = await findEndpointSecret(deps.db, request.tenant.id, endpointIdParam(request));
    if (!secret) throw notFound();
    return presentSecret(secret);
  });

  const rotateSchema = {
    tags: ['endpoints'],
    summary: `Rotate the endpoint's signing secret: the previous one keeps signing too for ${ROTATION_OVERLAP_HOURS} h`,
    params: EndpointIdParams,
    response: { 200: SecretBody, ...errors(401, 404) },
  };
  app.post<IdParams>('/endpoints/:id/secret/rotate', { schema: rotateSchema }, async (request) => {
    const secret = await rotateEndpointSecret(deps.db, request.tenant.id, endpointIdParam(request));
    if (!secret) throw notFound();
    request.log.info({ endpointId: request.params.id }, 'endpoint secret rotated');
    return presentSecret(secret);
  });
}

function presentEndpoint(row: EndpointRow) {
  return {
    id: row.id,
    url: row.url,
    description: row.description,
    eventTypes: row.event_types,
    channel: row.channel,
    enabled: row.enabled,
    rateLimitPerSecond: row.rate_limit_per_second,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
    health: {
      state: healthState(row.enabled, row.breaker_state),
      lastSuccessAt: row.last_success_at?.toISOString() ?? null,
      consecutiveFailures: row.consecutive_failures,
      failingSince: row.failing_since?.toISOString() ?? null,
      nextProbeAt: row.breaker_state === 'open' ? (row.next_probe_at?.toISOString() ?? null) : null,
      attemptsLastHour: row.attempts_last_hour,
      failureRateLastHour: row.failure_rate_last_hour,
      disabledReason: row.enabled ? null : row.disabled_reason,
    },
  };
}

function presentSecret(secret: { secret: string; previousSecretExpiresAt: Date | null }) {
  return { secret: secret.secret, previousSecretExpiresAt: secret.previousSecretExpiresAt?.toISOString() ?? null };
}
