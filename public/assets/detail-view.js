// The detail page of one upload (#/uploads/<id>): status, counters and progress kept live, the error,
// the facts, retry and delete, then the rejected rows and the webhook deliveries.
import { api, fetchSettled } from './api.js';
import { createDeliveriesPanel } from './deliveries-panel.js';
import { createErrorsPanel } from './errors-panel.js';
import {
  badge, el, formatBytes, formatNumber, formatPercent, formatRate, rowsPerSecond, setChildren, timeAgo,
} from './dom.js';

const FINAL = new Set(['completed', 'failed']);
const LIVE_FIELDS = ['status', 'attempt', 'rowsProcessed', 'rowsFailed', 'bytesProcessed', 'progress', 'rowsPerSecond', 'error'];

/**
 * @param {HTMLElement} root
 * @param {{ navigate: (hash: string, confirmation?: string) => void, onDeleted: (id: string) => void }} app
 */
export function createDetailView(root, { navigate, onDeleted }) {
  let current = null; // { id, upload, parts, errors, deliveries }

  async function show(id) {
    hide();
    // tracker.dirty: a live event came while a read was out, so that read may be stale (see fetchSettled)
    const view = { id, upload: null, tracker: { dirty: false } };
    current = view;
    setChildren(root, backLink(), el('p', { className: 'muted', role: 'status', text: 'Loading upload…' }));
    let upload;
    try {
      upload = await read(view);
    } catch (err) {
      if (current !== view) return;
      const text = err.status === 404 ? 'This upload does not exist, or it was deleted.' : `Could not load the upload: ${err.message}`;
      setChildren(root, backLink(), el('h1', { id: 'detail-title', tabIndex: -1, text: err.status === 404 ? 'Upload not found' : 'Upload unavailable' }), el('p', { className: 'error-box', role: 'alert', text }));
      return;
    }
    if (current !== view) return;
    view.upload = upload;
    build(view);
  }

  function build(view) {
    const { id, upload } = view;
    const title = el('h1', { id: 'detail-title', tabIndex: -1, text: upload.filename || id });
    const statusSlot = el('span');
    const actionStatus = el('p', { id: 'upload-action-status', className: 'action-status', role: 'status' });
    const retry = el('button', { type: 'button', className: 'secondary', text: 'Retry processing' });
    const remove = el('button', { type: 'button', className: 'danger', text: 'Delete upload' });
    const summary = el('div');
    view.parts = { statusSlot, summary, actionStatus, retry };
    view.errors = createErrorsPanel(id);
    view.deliveries = createDeliveriesPanel(id);

    retry.addEventListener('click', () => act(view, retry, 'Retrying…', async () => {
      const body = await api(`/uploads/${encodeURIComponent(id)}/retry`, { method: 'POST' });
      merge(view, body);
      return 'Retry queued: the upload will be processed again.';
    }));
    remove.addEventListener('click', async () => {
      const name = view.upload.filename || id;
      if (!window.confirm(`Delete the upload "${name}" and its report? This cannot be undone.`)) return;
      await act(view, remove, 'Deleting…', async () => {
        await api(`/uploads/${encodeURIComponent(id)}`, { method: 'DELETE' });
        onDeleted(id);
        navigate('#/', `Deleted the upload "${name}".`);
        return null;
      });
    });

    setChildren(
      root,
      backLink(),
      el('div', { className: 'panel' },
        el('div', { className: 'detail-head' }, title, statusSlot),
        summary,
        el('div', { className: 'actions' }, retry, remove),
        actionStatus),
      // Deliveries first: a few lines that say whether the client heard; the rejected rows can be long.
      view.deliveries.root,
      view.errors.root,
    );
    renderSummary(view);
    view.errors.load();
    view.deliveries.load(FINAL.has(upload.status));
  }

  async function act(view, button, pending, run) {
    const { actionStatus } = view.parts;
    button.disabled = true;
    actionStatus.dataset.kind = 'info';
    actionStatus.textContent = pending;
    try {
      const done = await run();
      if (done && current === view) {
        actionStatus.dataset.kind = 'ok';
        actionStatus.textContent = done;
      }
    } catch (err) {
      if (current !== view) return;
      actionStatus.dataset.kind = 'error';
      actionStatus.textContent = err.message;
    } finally {
      button.disabled = false;
    }
  }

  function renderSummary(view) {
    const u = view.upload;
    const { statusSlot, summary } = view.parts;
    setChildren(statusSlot, badge(u.status));
    const fraction = u.status === 'completed' ? 1 : (u.progress ?? 0);
    const counter = (label, value) => el('div', {}, el('dt', { text: label }), el('dd', { text: value }));
    const fact = (label, value) => [el('dt', { text: label }), el('dd', {}, value)];
    setChildren(
      summary,
      el('div', { className: 'upload-progress' },
        el('progress', { max: 1, value: fraction, 'aria-label': 'Processing progress' }),
        el('span', { text: formatPercent(fraction) })),
      el('dl', { className: 'counters' },
        counter(u.dryRun ? 'Rows valid (dry run)' : 'Rows loaded', formatNumber(u.rowsProcessed)),
        counter('Rows rejected', formatNumber(u.rowsFailed)),
        counter('Bytes read', `${formatBytes(u.bytesProcessed)} of ${formatBytes(u.sizeBytes)}`),
        counter('Rows/s', formatRate(rowsPerSecond(u)))),
      u.error
        ? el('div', { className: 'error-box', role: 'alert' },
            el('strong', { text: 'Processing failed' }), ' ',
            u.error.code ? el('code', { text: u.error.code }) : null,
            el('div', { text: u.error.message }))
        : null,
      el('dl', { className: 'facts' },
        fact('Upload id', el('code', { text: u.uploadId })),
        fact('Dataset', u.dataset ? [el('a', { href: `#/datasets/${encodeURIComponent(u.dataset)}`, text: u.dataset }), ` · ${modeText(u)}`] : '—'),
        u.dryRun ? fact('Dry run', 'yes: validated in full, nothing loaded') : null,
        u.rowsRemovedAt ? fact('Rows removed', [`${formatNumber(u.rowsRemoved ?? 0)} · `, timeAgo(u.rowsRemovedAt)]) : null,
        fact('Size', u.sizeBytes === undefined ? '—' : `${formatBytes(u.sizeBytes)} (${formatNumber(u.sizeBytes)} bytes)`),
        fact('SHA-256', u.sha256 ? el('code', { text: u.sha256 }) : '—'),
        fact('Callback URL', u.callbackUrl ? el('code', { text: u.callbackUrl }) : 'none'),
        fact('Attempt', String(u.attempt ?? '—')),
        fact('Created', timeAgo(u.createdAt)),
        fact('Started', timeAgo(u.startedAt)),
        fact('Finished', timeAgo(u.completedAt)),
        u.unknownColumns?.length ? fact('Ignored columns', u.unknownColumns.join(', ')) : null),
    );
  }

  function merge(view, body) {
    const before = view.upload.status;
    Object.assign(view.upload, body);
    renderSummary(view);
    if (before !== view.upload.status) onStatusChange(view);
  }

  /** A status change may bring rejected rows, a delivery, or new counters the event does not carry. */
  async function onStatusChange(view) {
    const final = FINAL.has(view.upload.status);
    view.errors.load();
    view.deliveries.load(final);
    try {
      const fresh = await read(view);
      if (current !== view) return;
      Object.assign(view.upload, fresh);
      renderSummary(view);
    } catch {
      // The live counters stay; the next event or refresh fills in the rest.
    }
  }

  function read(view) {
    return fetchSettled(() => api(`/uploads/${encodeURIComponent(view.id)}`), view.tracker);
  }

  function hide() {
    current?.deliveries?.stop();
    current = null;
    root.replaceChildren(); // nothing of a previous upload (or key) lingers in the hidden view
  }

  function backLink() {
    return el('a', { className: 'back', href: '#/', text: '← All uploads' });
  }

  return {
    show,
    hide,
    get uploadId() {
      return current?.id ?? null;
    },
    applyEvent(event) {
      const view = current;
      if (!view || event?.uploadId !== view.id) return;
      view.tracker.dirty = true;
      if (!view.upload) return; // still loading: the load reads again
      if (event.status === 'deleted') return navigate('#/');
      const patch = {};
      for (const name of LIVE_FIELDS) if (event[name] !== undefined) patch[name] = event[name];
      merge(view, patch);
    },
    /** Re-reads everything (after a reconnect, or while polling). */
    async refresh() {
      const view = current;
      if (!view?.upload) return;
      try {
        const fresh = await read(view);
        if (current !== view) return;
        merge(view, fresh);
        view.deliveries.load(FINAL.has(view.upload.status));
      } catch {
        // Shown on the next successful read.
      }
    },
  };
}

/** The load mode, with what an upsert or replace did once completed ("upsert: 1 inserted, 1 updated"). */
function modeText(u) {
  const mode = u.mode ?? 'append';
  if (mode === 'append' || typeof u.rowsInserted !== 'number') return mode;
  return `${mode}: ${formatNumber(u.rowsInserted)} inserted, ${formatNumber(u.rowsUpdated ?? 0)} updated`;
}
