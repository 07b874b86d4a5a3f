// One endpoint (#/endpoints/<id>): its settings and health (re-read every few seconds), enable/disable,
// rotate secret (the new one shown once), delete, recover since a time (a long-running operation whose
// status is polled until done), and its delivery log (endpoint-log.js).
import { api, sendJson } from './api.js';
import { el, formatPercent, setChildren, timeAgo } from './dom.js';
import { createEndpointLog } from './endpoint-log.js';
import { endpointPath, healthBadge, secretBox, successRate } from './endpoints-common.js';

const POLL_MS = 3000;
const OPERATION_POLL_MS = 1000;

/** A Date as the value of a datetime-local input (the browser's local time, to the minute). */
function localInputValue(date) {
  return new Date(date.getTime() - date.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
}

/** @param {HTMLElement} root @param {{ navigate: (hash: string, confirmation?: string) => void }} app */
export function createEndpointDetailView(root, { navigate }) {
  let current = null; // { id, endpoint, parts, log, timer, operationTimer }

  async function show(id) {
    hide();
    const view = { id, endpoint: null, timer: null, operationTimer: null };
    current = view;
    setChildren(root, backLink(), el('p', { className: 'muted', role: 'status', text: 'Loading endpoint…' }));
    try {
      view.endpoint = await api(endpointPath(id));
    } catch (err) {
      if (current !== view) return;
      const text = err.status === 404 ? 'This endpoint does not exist, or it was deleted.' : `Could not load the endpoint: ${err.message}`;
      setChildren(root, backLink(), el('h1', { id: 'endpoint-title', tabIndex: -1, text: err.status === 404 ? 'Endpoint not found' : 'Endpoint unavailable' }), el('p', { className: 'error-box', role: 'alert', text }));
      return;
    }
    if (current !== view) return;
    build(view);
  }

  function build(view) {
    const { id } = view;
    const parts = {
      title: el('h1', { id: 'endpoint-title', tabIndex: -1 }),
      state: el('span'),
      summary: el('div'),
      toggle: el('button', { type: 'button', id: 'endpoint-toggle', className: 'secondary' }),
      rotate: el('button', { type: 'button', className: 'secondary', text: 'Rotate secret' }),
      remove: el('button', { type: 'button', className: 'danger', text: 'Delete endpoint' }),
      status: el('p', { id: 'endpoint-action-status', className: 'action-status', role: 'status' }),
      secret: el('div', { id: 'endpoint-secret' }),
    };
    view.parts = parts;
    view.log = createEndpointLog(id);

    parts.toggle.addEventListener('click', () => act(view, parts.toggle, async () => {
      const enabled = !view.endpoint.enabled;
      view.endpoint = await sendJson(endpointPath(id), 'PATCH', { enabled });
      render(view);
      return enabled ? 'Enabled: deliveries flow again (the breaker is closed).' : 'Disabled: new events skip it; its pending deliveries wait.';
    }));
    parts.rotate.addEventListener('click', () => act(view, parts.rotate, async () => {
      const rotated = await sendJson(endpointPath(id, '/secret/rotate'), 'POST', {});
      const until = rotated.previousSecretExpiresAt ? ` The previous one keeps signing until ${new Date(rotated.previousSecretExpiresAt).toLocaleString()}.` : '';
      setChildren(parts.secret, secretBox(rotated.secret, `New signing secret.${until}`));
      return 'Secret rotated.';
    }));
    parts.remove.addEventListener('click', async () => {
      const name = view.endpoint.description || view.endpoint.url;
      if (!window.confirm(`Delete the endpoint "${name}"? Its pending deliveries are skipped; its history is kept.`)) return;
      await act(view, parts.remove, async () => {
        await api(endpointPath(id), { method: 'DELETE' });
        navigate('#/endpoints', `Deleted the endpoint "${name}".`);
        return null;
      });
    });

    setChildren(
      root,
      backLink(),
      el('div', { className: 'panel' },
        el('div', { className: 'detail-head' }, parts.title, parts.state),
        parts.summary,
        el('div', { className: 'actions' }, parts.toggle, parts.rotate, parts.remove),
        parts.status,
        parts.secret),
      recoverPanel(view),
      view.log.root,
    );
    render(view);
    view.log.load();
    view.timer = setTimeout(() => poll(view), POLL_MS);
  }

  async function poll(view) {
    try {
      const fresh = await api(endpointPath(view.id));
      if (current !== view) return;
      view.endpoint = fresh;
      render(view);
    } catch {
      // The next read says more; a 404 (deleted elsewhere) shows on the next action.
    } finally {
      if (current === view) view.timer = setTimeout(() => poll(view), POLL_MS);
    }
  }

  async function act(view, button, run) {
    const { status } = view.parts;
    button.disabled = true;
    status.dataset.kind = 'info';
    status.textContent = 'Working…';
    try {
      const done = await run();
      if (done && current === view) {
        status.dataset.kind = 'ok';
        status.textContent = done;
      }
    } catch (err) {
      if (current !== view) return;
      status.dataset.kind = 'error';
      status.textContent = err.message;
    } finally {
      button.disabled = false;
    }
  }

  function render(view) {
    const e = view.endpoint;
    const h = e.health;
    const { title, state, summary, toggle } = view.parts;
    title.textContent = e.description || e.url;
    setChildren(state, healthBadge(h));
    toggle.textContent = e.enabled ? 'Disable' : 'Enable';
    const counter = (label, value) => el('div', {}, el('dt', { text: label }), el('dd', {}, value));
    const fact = (label, value) => [el('dt', { text: label }), el('dd', {}, value)];
    setChildren(
      summary,
      el('dl', { className: 'counters' },
        counter('Success (1 h)', successRate(h)),
        counter('Attempts (1 h)', String(h.attemptsLastHour)),
        counter('Failures in a row', String(h.consecutiveFailures)),
        counter('Last success', timeAgo(h.lastSuccessAt))),
      h.disabledReason ? el('p', { className: 'error-box', text: `Disabled: ${h.disabledReason}` }) : null,
      el('dl', { className: 'facts' },
        fact('Endpoint id', el('code', { text: e.id })),
        fact('URL', el('code', { text: e.url })),
        fact('Channel', e.channel),
        fact('Event types', e.eventTypes.length === 0 ? 'all' : e.eventTypes.join(', ')),
        fact('Rate limit', e.rateLimitPerSecond === null ? 'none' : `${e.rateLimitPerSecond}/s`),
        fact('Failure rate (1 h)', h.failureRateLastHour === null ? '—' : formatPercent(h.failureRateLastHour)),
        h.failingSince ? fact('Failing since', timeAgo(h.failingSince)) : null,
        h.nextProbeAt ? fact('Next probe', timeAgo(h.nextProbeAt)) : null,
        fact('Created', timeAgo(e.createdAt))),
    );
  }

  /** Recover since <datetime> [until <datetime>]: starts the operation, then follows it until done. */
  function recoverPanel(view) {
    const since = el('input', { id: 'recover-since', name: 'since', type: 'datetime-local', required: true, value: localInputValue(new Date(Date.now() - 3_600_000)) });
    const until = el('input', { id: 'recover-until', name: 'until', type: 'datetime-local' });
    const submit = el('button', { type: 'submit', text: 'Recover' });
    const operation = el('div', { id: 'recover-operation', className: 'action-status', role: 'status' });
    const form = el('form', { className: 'panel', noValidate: true, 'aria-labelledby': 'recover-title' },
      el('h2', { id: 'recover-title', text: 'Recover' }),
      el('p', { className: 'muted', text: 'Send again every failed delivery of this endpoint whose event happened in the window, and the events it never got.' }),
      el('div', { className: 'fields' },
        el('div', { className: 'field' }, el('label', { for: 'recover-since', text: 'Since' }), since),
        el('div', { className: 'field' }, el('label', { for: 'recover-until' }, 'Until', el('span', { className: 'muted', text: ' (optional: now)' })), until)),
      el('div', { className: 'actions' }, submit),
      operation);
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const when = { since: new Date(since.value), until: until.value ? new Date(until.value) : null };
      if (Number.isNaN(when.since.getTime()) || (when.until && Number.isNaN(when.until.getTime()))) {
        operation.dataset.kind = 'error';
        operation.textContent = 'Enter a date and time to recover from.';
        return;
      }
      submit.disabled = true;
      operation.dataset.kind = 'info';
      operation.textContent = 'Starting the recovery…';
      try {
        const body = { since: when.since.toISOString(), ...(when.until && { until: when.until.toISOString() }) };
        const started = await sendJson(endpointPath(view.id, '/recover'), 'POST', body);
        if (current !== view) return;
        follow(view, started, operation, submit);
      } catch (err) {
        operation.dataset.kind = 'error';
        operation.textContent = `Recovery refused: ${err.message}`;
        submit.disabled = false;
      }
    });
    return form;
  }

  function follow(view, op, slot, submit) {
    const { since, until, queued } = op.metadata;
    const range = `${new Date(since).toLocaleString()} – ${new Date(until).toLocaleString()}`;
    slot.dataset.operationId = op.id;
    slot.dataset.done = String(op.done);
    if (!op.done) {
      slot.dataset.kind = 'info';
      slot.textContent = `Operation ${op.id} running (${range}): ${queued} queued so far…`;
      view.operationTimer = setTimeout(async () => {
        try {
          const next = await api(`/operations/${encodeURIComponent(op.id)}`);
          if (current === view) follow(view, next, slot, submit);
        } catch (err) {
          if (current !== view) return;
          slot.dataset.kind = 'error';
          slot.textContent = `Operation ${op.id}: could not read its status (${err.message})`;
          submit.disabled = false;
        }
      }, OPERATION_POLL_MS);
      return;
    }
    submit.disabled = false;
    if (op.error) {
      slot.dataset.kind = 'error';
      slot.textContent = `Operation ${op.id} failed: ${op.error.message} (${op.error.code})`;
      return;
    }
    const n = op.result?.queued ?? queued;
    slot.dataset.kind = 'ok';
    slot.textContent = `Operation ${op.id} done (${range}): ${n} deliver${n === 1 ? 'y' : 'ies'} queued again.`;
    view.log.load();
  }

  function hide() {
    if (current) {
      clearTimeout(current.timer);
      clearTimeout(current.operationTimer);
      current.log?.stop();
    }
    current = null;
    root.replaceChildren(); // nothing of a previous endpoint (or key) lingers in the hidden view
  }

  function backLink() {
    return el('a', { className: 'back', href: '#/endpoints', text: '← All endpoints' });
  }

  return {
    show,
    hide,
    get endpointId() {
      return current?.id ?? null;
    },
  };
}
