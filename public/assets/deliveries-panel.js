// Webhook deliveries of one upload with every attempt (GET /uploads/:id/deliveries) and redelivery.
// Deliveries change without an upload event (the dispatcher works on its own), so the panel polls
// while one is pending or has just been asked to go again.
import { api } from './api.js';
import { badge, el, emptyState, setChildren, table, timeAgo } from './dom.js';

const ATTEMPT_COLUMNS = [
  { label: '#', num: true },
  { label: 'Trigger' },
  { label: 'Started' },
  { label: 'HTTP status', num: true },
  { label: 'Duration', num: true },
  { label: 'Error' },
];
const POLL_MS = 1500;
const POLL_AFTER_REDELIVER_MS = 30_000;

export function createDeliveriesPanel(uploadId) {
  const encoded = encodeURIComponent(uploadId);
  const body = el('div', {}, el('p', { className: 'muted', text: 'Loading deliveries…' }));
  const root = el(
    'section',
    { className: 'panel', 'aria-labelledby': `deliveries-title-${uploadId}` },
    el('h2', { id: `deliveries-title-${uploadId}`, text: 'Webhook deliveries' }),
    body,
  );
  /** deliveryId → message shown next to its button; survives re-renders */
  const messages = new Map();
  let pollTimer = null;
  let pollUntil = 0;
  let stopped = false;
  let uploadFinal = false;
  let seq = 0;

  async function load() {
    clearTimeout(pollTimer);
    const mine = ++seq;
    try {
      const data = await api(`/uploads/${encoded}/deliveries`);
      if (mine !== seq || stopped) return;
      render(data.items);
      const pending = data.items.some((d) => d.status === 'pending');
      if (pending || Date.now() < pollUntil) pollTimer = setTimeout(load, POLL_MS);
    } catch (err) {
      if (mine !== seq || stopped) return;
      setChildren(body, el('p', { className: 'error-box', role: 'alert', text: `Could not load deliveries: ${err.message}` }));
    }
  }

  async function redeliver(delivery, button) {
    button.disabled = true;
    messages.set(delivery.deliveryId, { kind: 'info', text: 'Asking for a redelivery…' });
    render(lastItems);
    try {
      await api(`/deliveries/${encodeURIComponent(delivery.deliveryId)}/redeliver`, { method: 'POST' });
      messages.set(delivery.deliveryId, { kind: 'ok', text: 'Redelivery queued — the new attempt appears below.' });
      pollUntil = Date.now() + POLL_AFTER_REDELIVER_MS;
    } catch (err) {
      messages.set(delivery.deliveryId, { kind: 'error', text: `Redelivery refused: ${err.message}` });
    }
    await load();
  }

  let lastItems = [];
  function render(items) {
    lastItems = items;
    const focusedId = document.activeElement?.dataset?.redeliver;
    if (items.length === 0) {
      setChildren(
        body,
        emptyState(uploadFinal ? 'No deliveries: this upload was sent without a callback URL.' : 'A webhook is sent when the upload finishes.'),
      );
      return;
    }
    setChildren(body, items.map(renderDelivery));
    if (focusedId) body.querySelector(`[data-redeliver="${CSS.escape(focusedId)}"]`)?.focus();
  }

  function renderDelivery(d) {
    if (d.target === null || d.channel === 'none') {
      // The outbox records a notification even without a callback (status `skipped`): nothing to send.
      return el(
        'article',
        { className: 'delivery', dataset: { deliveryId: d.deliveryId } },
        el('div', { className: 'delivery-meta' }, badge(d.status), el('strong', { text: d.event })),
        emptyState('Not sent: this upload has no callback URL.'),
      );
    }
    const button = el('button', {
      type: 'button',
      className: 'secondary',
      text: 'Redeliver',
      dataset: { redeliver: d.deliveryId },
      'aria-label': `Redeliver ${d.event} to ${d.target ?? 'no target'}`,
    });
    button.addEventListener('click', () => redeliver(d, button));
    const message = messages.get(d.deliveryId);
    const attempts = [...(d.history ?? [])].sort((a, b) => a.attempt - b.attempt);
    return el(
      'article',
      { className: 'delivery', dataset: { deliveryId: d.deliveryId } },
      el('div', { className: 'delivery-meta' },
        badge(d.status),
        el('strong', { text: d.event }),
        el('span', { className: 'target mono', text: d.target ?? 'no target' }),
        el('span', { className: 'muted', text: `${d.attempts} attempt${d.attempts === 1 ? '' : 's'}` }),
        d.status === 'pending' && d.nextAttemptAt ? el('span', { className: 'muted' }, 'next ', timeAgo(d.nextAttemptAt)) : null,
        button),
      d.lastError ? el('p', { className: 'muted', text: `Last error: ${d.lastError}` }) : null,
      el('p', { className: 'action-status', role: 'status', dataset: { kind: message?.kind ?? '' }, text: message?.text ?? '' }),
      attempts.length === 0
        ? emptyState('No attempt yet.')
        : table(
            ATTEMPT_COLUMNS,
            attempts.map((a) => [
              String(a.attempt),
              a.trigger,
              timeAgo(a.startedAt),
              a.responseStatus === null ? '—' : String(a.responseStatus),
              a.durationMs !== null ? `${a.durationMs} ms` : a.state === 'started' ? 'no outcome yet' : '—',
              a.errorCode ? `${a.errorCode}${a.errorMessage ? `: ${a.errorMessage}` : ''}` : '—',
            ]),
            { caption: `Attempts of ${d.event}` },
          ),
    );
  }

  return {
    root,
    /** @param {boolean} final whether the upload has finished (the empty state says why there is nothing) */
    load(final) {
      uploadFinal = final;
      return load();
    },
    stop() {
      stopped = true;
      clearTimeout(pollTimer);
    },
  };
}
