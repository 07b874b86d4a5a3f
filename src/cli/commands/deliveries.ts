// `deliveries ID` (an upload's notifications with every attempt) and `redeliver DELIVERY_ID`.
import { runCommand } from './common.ts';

interface Attempt {
  attempt: number;
  trigger: string;
  /** started (no outcome yet) | succeeded | failed | interrupted */
  state: string;
  startedAt: string;
  durationMs: number | null;
  responseStatus: number | null;
  responseExcerpt: string | null;
  errorCode: string | null;
  errorMessage: string | null;
}

interface Delivery {
  deliveryId: string;
  event: string;
  channel: string;
  target: string | null;
  status: string;
  attempts: number;
  nextAttemptAt: string | null;
  lastError: string | null;
  deliveredAt: string | null;
  history?: Attempt[];
}

export function deliveriesCommand(argv: string[]): Promise<number> {
  return runCommand(argv, { usage: 'deliveries ID', options: {}, positionals: ['ID'] }, async ({ args, out, client }) => {
    const body = await client.json<{ uploadId: string; items: Delivery[] }>(
      'GET',
      `/uploads/${encodeURIComponent(args[0]!)}/deliveries`,
    );
    out.result(body, () => (body.items.length === 0 ? 'no deliveries (yet)' : body.items.map(describeDelivery).join('\n\n')));
    return 0;
  });
}

export function redeliverCommand(argv: string[]): Promise<number> {
  return runCommand(argv, { usage: 'redeliver DELIVERY_ID', options: {}, positionals: ['DELIVERY_ID'] }, async ({ args, out, client }) => {
    const delivery = await client.json<Delivery>('POST', `/deliveries/${encodeURIComponent(args[0]!)}/redeliver`);
    out.result(delivery, () => `redelivery queued: ${delivery.deliveryId} → ${delivery.target ?? delivery.channel}`);
    return 0;
  });
}

function describeDelivery(d: Delivery): string {
  const head = [
    `${d.deliveryId}  ${d.event}  ${d.channel}  ${d.status}  ${d.attempts} attempt${d.attempts === 1 ? '' : 's'}`,
    d.target ? `  target        ${d.target}` : null,
    d.deliveredAt ? `  delivered at  ${d.deliveredAt}` : null,
    d.nextAttemptAt ? `  next attempt  ${d.nextAttemptAt}` : null,
    d.lastError ? `  last error    ${d.lastError}` : null,
  ].filter((l) => l !== null);
  const history = (d.history ?? []).map((a) => {
    const outcome = [a.responseStatus ?? '—', a.errorCode, a.errorMessage ?? a.responseExcerpt].filter((x) => x !== null && x !== '');
    const duration = a.durationMs !== null ? `${a.durationMs} ms` : a.state === 'started' ? 'no outcome yet' : '—';
    return `  #${a.attempt}  ${a.startedAt}  ${a.trigger}  ${duration}  ${outcome.join('  ').replace(/\s+/g, ' ')}`;
  });
  return [...head, ...history].join('\n');
}
