// What the endpoints pages share: JSON calls with a body (POST/PATCH; plain reads go through api.js),
// the health badge and success rate, and the one-time display of a signing secret.
import { ApiError, authHeaders, errorFrom, parseJson } from './api.js';
import { badge, el } from './dom.js';

/**
 * A JSON call with a JSON body. Resolves to the parsed answer (null for 204); rejects with ApiError
 * carrying the API's own message, like api().
 * @param {string} path @param {'POST' | 'PATCH'} method @param {unknown} body
 */
export async function sendJson(path, method, body) {
  let res;
  try {
    res = await fetch(path, {
      method,
      headers: { accept: 'application/json', 'content-type': 'application/json', ...authHeaders() },
      body: JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, 'network', 'Cannot reach the server. Check your connection and try again.');
  }
  if (res.status === 204) return null;
  const text = await res.text();
  const parsed = parseJson(text);
  if (!res.ok) throw errorFrom(res.status, parsed, text);
  return parsed;
}

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
