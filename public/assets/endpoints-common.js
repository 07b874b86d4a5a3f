// What the endpoints pages share: the health badge and success rate, and the one-time display of a signing secret.
import { badge, el } from './dom.js';

export const endpointPath = (id, tail = '') => `/endpoints/${encodeURIComponent(id)}${tail}`;

/** closed (deliveries flow), open (breaker: waiting for a probe), disabled — as a badge with a tooltip. */
export function healthBadge(health) {
  const node = badge(health.state);
  node.title = {
    closed: 'Deliveries flow',
    open: 'Circuit breaker open: deliveries wait for a successful probe',
    disabled: health.disabledReason ? `Disabled: ${health.disabledReason}` : 'Disabled: receives no new event',
  }[health.state] ?? '';
  return node;
}

/** The successful share of the last hour's attempts ("—" without any). */
export function successRate(health) {
  if (health.failureRateLastHour === null || health.failureRateLastHour === undefined) return '—';
  return `${Math.round((1 - health.failureRateLastHour) * 100)}%`;
}

/** A signing secret shown once, selectable, with what to do with it. */
export function secretBox(secret, lead) {
  return el('div', { className: 'secret-box', role: 'status' },
    el('p', { text: lead }),
    el('code', { className: 'secret', text: secret }),
    el('p', { className: 'muted', text: 'Copy it now: receivers verify signatures with it (Standard Webhooks). It stays readable at GET /endpoints/:id/secret.' }));
}
