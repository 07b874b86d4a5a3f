// One endpoint's delivery log (GET /endpoints/:id/deliveries): each delivery with every attempt — outcome,
// HTTP status, duration, the start of the response — and a button to send it again. New deliveries and
// attempts come from the dispatcher without a live event, so the panel re-reads every few seconds.
import { api } from './api.js';
import { badge, el, emptyState, setChildren, table, timeAgo } from './dom.js';
import { endpointPath } from './endpoints-common.js';

const POLL_MS = 2000;
const PAGE_SIZE = 20;
const EXCERPT_CHARS = 300;
const ATTEMPT_COLUMNS = [
  { label: '#', num: true },
  { label: 'Trigger' },
  { label: 'Started' },
  { label: 'Result' },
  { label: 'HTTP status', num: true },
  { label: 'Duration', num: true },
  { label: 'Response' },
  { label: 'Error' },
];

/** @param {string} endpointId */
export function createEndpointLog(endpointId) {
  const body = el('div', {}, el('p', { className: 'muted', text: 'Loading deliveries…' }));
  const more = el('button', { type: 'button', className: 'secondary', text: 'Show older deliveries', hidden: true });
  const root = el('section', { className: 'panel', 'aria-labelledby': 'endpoint-log-title' },
    el('h2', { id: 'endpoint-log-title', text: 'Delivery log' }),
    body,
    more);
  /** deliveryId → the message next to its button; survives re-renders */
  const messages = new Map();
  let limit = PAGE_SIZE;
  let timer = null;
  let stopped = false;
  let seq = 0;
  let lastItems = [];
  let lastRendered = '';

  more.addEventListener('click', () => {
    limit = Math.min(100, limit + PAGE_SIZE);
    load();
  });

  async function load() {
    clearTimeout(timer);
    const mine = ++seq;
    try {
      const page = await api(`${endpointPath(endpointId, '/deliveries')}?limit=${limit}`);
      if (mine !== seq || stopped) return;
      more.hidden = page.nextCursor === null || limit >= 100;
      render(page.items);
    } catch (err) {
      if (mine !== seq || stopped || err.status === 401) return;
      lastRendered = '';
      setChildren(body, el('p', { className: 'error-box', role: 'alert', text: `Could not load deliveries: ${err.message}` }));
    } finally {
      if (mine === seq && !stopped) timer = setTimeout(load, POLL_MS);
    }
  }

  async function resend(delivery, button) {
    button.disabled = true;
    messages.set(delivery.deliveryId, { kind: 'info', text: 'Asking for a resend…' });
    render(lastItems);
    try {
      await api(`/deliveries/${encodeURIComponent(delivery.deliveryId)}/redeliver`, { method: 'POST' });
      messages.set(delivery.deliveryId, { kind: 'ok', text: 'Resend queued — the new attempt appears below.' });
    } catch (err) {
      messages.set(delivery.deliveryId, { kind: 'error', text: `Resend refused: ${err.message}` });
    }
    await load();
  }

  function render(items) {
    lastItems = items;
    // Unchanged answers leave the DOM (focus, text selection) alone.
    const snapshot = JSON.stringify([items, [...messages]]);
    if (snapshot === lastRendered) return;
    lastRendered = snapshot;
    const focusedId = document.activeElement?.dataset?.resend;
    if (items.length === 0) {
      setChildren(body, emptyState('No deliveries yet: events that match this endpoint appear here as they are sent.'));
      return;
    }
    setChildren(body, items.map(renderDelivery));
    if (focusedId) body.querySelector(`[data-resend="${CSS.escape(focusedId)}"]`)?.focus();
  }

  function renderDelivery(d) {
    const button = el('button', {
      type: 'button',
      className: 'secondary',
      text: 'Resend',
      dataset: { resend: d.deliveryId },
      'aria-label': `Resend ${d.event} ${d.deliveryId}`,
    });
    button.addEventListener('click', () => resend(d, button));
    const message = messages.get(d.deliveryId);
    const attempts = [...(d.history ?? [])].sort((a, b) => a.attempt - b.attempt);
    return el('article', { className: 'delivery', dataset: { deliveryId: d.deliveryId } },
      el('div', { className: 'delivery-meta' },
        badge(d.status),
        el('strong', { text: d.event }),
        d.uploadId ? el('a', { href: `#/uploads/${encodeURIComponent(d.uploadId)}`, className: 'mono', text: `upload ${d.uploadId.slice(0, 8)}` }) : null,
        el('span', { className: 'muted', text: `${d.attempts} attempt${d.attempts === 1 ? '' : 's'}` }),
        el('span', { className: 'muted' }, 'queued ', timeAgo(d.createdAt)),
        d.status === 'pending' && d.nextAttemptAt ? el('span', { className: 'muted' }, 'next ', timeAgo(d.nextAttemptAt)) : null,
        button),
      d.lastError ? el('p', { className: 'muted', text: `Last error: ${d.lastError}` }) : null,
      el('p', { className: 'action-status', role: 'status', dataset: { kind: message?.kind ?? '' }, text: message?.text ?? '' }),
      attempts.length === 0
        ? emptyState('No attempt yet.')
        : table(ATTEMPT_COLUMNS, attempts.map(attemptCells), { caption: `Attempts of ${d.event} ${d.deliveryId}` }));
  }

  return {
    root,
    load,
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

function attemptCells(a) {
  const excerpt = a.responseExcerpt ?? '';
  return [
    String(a.attempt),
    a.trigger,
    timeAgo(a.startedAt),
    badge(a.state),
    a.responseStatus === null ? '—' : String(a.responseStatus),
    a.durationMs !== null ? `${a.durationMs} ms` : a.state === 'started' ? 'no outcome yet' : '—',
    excerpt ? el('span', { className: 'raw', title: excerpt, text: excerpt.length > EXCERPT_CHARS ? `${excerpt.slice(0, EXCERPT_CHARS)}…` : excerpt }) : '—',
    a.errorCode ? `${a.errorCode}${a.errorMessage ? `: ${a.errorMessage}` : ''}` : '—',
  ];
}
