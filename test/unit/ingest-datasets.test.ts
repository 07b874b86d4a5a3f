import { describe, expect, it } from 'vitest';
import { WEBHOOK_EVENTS_HEADER } from '../../src/datagen/webhook-events.ts';
import { datasets, getDataset, webhookEvents } from '../../src/ingest/datasets/index.ts';
import { generateCsv } from '../helpers/generate.ts';

describe('dataset registry', () => {
  it('finds webhook_events by name and nothing else', () => {
    expect(getDataset('webhook_events')).toBe(webhookEvents);
    expect(getDataset('nope')).toBeUndefined();
    expect([...datasets.keys()]).toEqual(['webhook_events']);
  });

  it('webhook_events matches the generator header, in order', () => {
    const out = generateCsv(1).toString();
    expect(out.split('\n')[0]).toBe(WEBHOOK_EVENTS_HEADER);
    expect(WEBHOOK_EVENTS_HEADER).toBe(webhookEvents.columns.map((c) => c.name).join(','));
  });

  it('webhook_events declares the agreed types and rules', () => {
    const byName = Object.fromEntries(webhookEvents.columns.map((c) => [c.name, c]));
    expect(webhookEvents.table).toBe('webhook_events');
    expect(byName.event_id).toMatchObject({ type: 'uuid', required: true });
    expect(byName.event_type).toMatchObject({ type: 'text', required: true, maxLength: 100 });
    expect(byName.amount_cents).toMatchObject({ type: 'bigint' });
    expect(byName.occurred_at).toMatchObject({ type: 'timestamptz', required: true });
    expect(byName.payload).toMatchObject({ type: 'jsonb' });
    expect(byName.currency!.pattern!.test('USD')).toBe(true);
    expect(byName.currency!.pattern!.test('usd')).toBe(false);
    expect(webhookEvents.columns.filter((c) => c.required).map((c) => c.name)).toEqual(['event_id', 'event_type', 'occurred_at']);
  });
});
