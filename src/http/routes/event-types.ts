// /event-types — what a tenant can subscribe an endpoint to, each with the JSON Schema of its payload.
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { EVENT_TYPES } from '../../notify/event-types.ts';
import { errors } from '../schemas.ts';

const EventTypeBody = Type.Object({
  name: Type.String({ description: 'e.g. upload.completed; the payload’s `type`' }),
  description: Type.String(),
  toCallbackUrl: Type.Boolean({ description: "also sent to an upload's own callbackUrl (the others: to subscribed endpoints only)" }),
  schema: Type.Object({}, { additionalProperties: true, description: 'JSON Schema (draft 2020-12 compatible) of the webhook body' }),
});

export async function eventTypeRoutes(app: FastifyInstance): Promise<void> {
  const schema = {
    tags: ['endpoints'],
    summary: 'The event types, each with the JSON Schema of its payload',
    response: { 200: Type.Object({ items: Type.Array(EventTypeBody) }), ...errors(401) },
  };
  // Plain JSON copies: TypeBox marks its schemas with symbol keys, which are no part of JSON Schema.
  const items = EVENT_TYPES.map((t) => ({ ...t, schema: JSON.parse(JSON.stringify(t.schema)) as Record<string, unknown> }));
  app.get('/event-types', { schema }, async () => ({ items }));
}
