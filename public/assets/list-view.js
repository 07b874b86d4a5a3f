// The list page: stats cards (which double as status filters), the upload form and the uploads table,
// kept current by live events — rows are updated in place so focus and scroll stay where they are.
import { api, fetchSettled } from './api.js';
import { badge, el, emptyState, formatNumber, formatPercent, formatRate, rowsPerSecond, setChildren, timeAgo } from './dom.js';
import { bindUploadForm } from './upload-form.js';

const STATUSES = ['uploaded', 'processing', 'completed', 'failed'];
const COLUMNS = [
  { label: 'File' },
  { label: 'Status' },
  { label: 'Rows', num: true },
  { label: 'Rejected', num: true },
  { label: 'Progress' },
  { label: 'Rows/s', num: true },
  { label: 'Created' },
];
const PAGE_SIZE = 50;
const FINAL = new Set(['completed', 'failed']);

export function createListView(root) {
  const statsEl = root.querySelector('#stats');
  const listEl = root.querySelector('#uploads');
  const filterEl = root.querySelector('#list-filter');
  const moreButton = root.querySelector('#load-more');

  /** @type {Map<string, { upload: object, row: HTMLTableRowElement }>} */
  const rows = new Map();
  let tbody = null;
  let filter = null;
  let nextCursor = null;
  let loadSeq = 0;
  let statsTimer = null;
  /** uploadId → the tracker of its one outstanding GET /uploads/:id */
  const fetching = new Map();
  /** ids that had events while a page load was out (its snapshot may be older for them) */
  let touchedDuringLoad = null;

  const form = bindUploadForm(root.querySelector('#upload-form'), { onAccepted: (id) => fetchRow(id) });
  moreButton.addEventListener('click', () => loadPage(true));

  // ---- stats ----
  async function loadStats() {
    try {
      renderStats(await api('/uploads/stats'));
    } catch (err) {
      if (err.status !== 401) setChildren(statsEl, el('p', { className: 'muted', text: `Counts unavailable: ${err.message}` }));
    }
  }
  function scheduleStats() {
    clearTimeout(statsTimer);
    statsTimer = setTimeout(loadStats, 300);
  }
  function renderStats(stats) {
    const card = (status, label, value) =>
      el(
        'button',
        {
          type: 'button',
          className: 'stat',
          'aria-pressed': String(filter === status),
          dataset: { status: status ?? 'all' },
          title: status ? `Show only ${status} uploads` : 'Show all uploads',
          on: { click: () => setFilter(filter === status ? null : status) },
        },
        el('span', { className: 'stat-label', text: label }),
        el('span', { className: 'stat-value', text: formatNumber(value ?? 0) }),
      );
    const focused = document.activeElement?.closest?.('.stat')?.dataset.status;
    setChildren(statsEl, card(null, 'All uploads', stats.total), STATUSES.map((s) => card(s, capitalize(s), stats[s])));
    if (focused) statsEl.querySelector(`[data-status="${focused}"]`)?.focus();
  }
  function setFilter(status) {
    filter = status;
    for (const button of statsEl.querySelectorAll('.stat')) {
      button.setAttribute('aria-pressed', String((button.dataset.status === 'all' ? null : button.dataset.status) === filter));
    }
    loadPage(false);
  }

  // ---- table ----
  async function loadPage(more) {
    const seq = ++loadSeq;
    const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (filter) params.set('status', filter);
    if (more && nextCursor) params.set('cursor', nextCursor);
    listEl.setAttribute('aria-busy', 'true');
    moreButton.disabled = true;
    const touched = new Set();
    touchedDuringLoad = touched;
    try {
      const page = await api(`/uploads?${params}`);
      if (seq !== loadSeq) return;
      if (!more) resetTable();
      for (const upload of page.items) addRow(upload, 'end');
      nextCursor = page.nextCursor;
      renderFrame();
      for (const id of touched) fetchRow(id);
    } catch (err) {
      if (seq !== loadSeq || err.status === 401) return;
      setChildren(
        listEl,
        el('div', { className: 'empty', role: 'alert' },
          el('p', { text: `Could not load uploads: ${err.message}` }),
          el('button', { type: 'button', className: 'secondary', text: 'Try again', on: { click: () => loadPage(false) } })),
      );
    } finally {
      if (touchedDuringLoad === touched) touchedDuringLoad = null;
      if (seq === loadSeq) {
        listEl.setAttribute('aria-busy', 'false');
        moreButton.disabled = false;
      }
    }
  }

  function resetTable() {
    rows.clear();
    tbody = el('tbody');
  }

  /** Shows the table, or the empty state, and the filter/paging controls. */
  function renderFrame() {
    filterEl.textContent = filter ? `showing ${filter} only` : '';
    moreButton.hidden = !nextCursor;
    if (rows.size === 0) {
      const text = filter ? `No ${filter} uploads.` : 'No uploads yet. Choose a CSV file above to start one.';
      setChildren(listEl, emptyState(text));
      return;
    }
    if (!listEl.contains(tbody)) {
      const head = el('thead', {}, el('tr', {}, COLUMNS.map((c) => el('th', { scope: 'col', className: c.num ? 'num' : undefined, text: c.label }))));
      setChildren(listEl, el('div', { className: 'table-wrap' }, el('table', { className: 'stack uploads' }, head, tbody)));
    }
  }

  function addRow(upload, where) {
    const existing = rows.get(upload.uploadId);
    if (existing) {
      Object.assign(existing.upload, upload);
      return updateRow(existing);
    }
    const cells = COLUMNS.map((c) => el('td', { 'data-label': c.label, className: c.num ? 'num' : undefined }));
    const link = el('a', { href: `#/uploads/${encodeURIComponent(upload.uploadId)}`, text: upload.filename || upload.uploadId });
    cells[0].className = 'cell-file';
    cells[0].append(link);
    cells[4].classList.add('cell-progress');
    const row = el('tr', { dataset: { uploadId: upload.uploadId } }, cells);
    const entry = { upload: { ...upload }, row };
    rows.set(upload.uploadId, entry);
    if (where === 'start') tbody.prepend(row);
    else tbody.append(row);
    updateRow(entry);
  }

  function updateRow({ upload, row }) {
    const [, status, processed, failed, progress, rate, created] = row.cells;
    row.dataset.status = upload.status;
    setChildren(status, badge(upload.status));
    processed.textContent = formatNumber(upload.rowsProcessed);
    failed.textContent = formatNumber(upload.rowsFailed);
    const fraction = upload.status === 'completed' ? 1 : (upload.progress ?? 0);
    setChildren(
      progress,
      el('span', { className: 'progress-inline' },
        el('progress', { max: 1, value: fraction, 'aria-label': `Progress of ${upload.filename || upload.uploadId}` }),
        el('span', { className: 'muted', text: formatPercent(fraction) })),
    );
    rate.textContent = formatRate(rowsPerSecond(upload));
    if (!created.firstChild) created.append(timeAgo(upload.createdAt));
  }

  /**
   * Reads one upload and shows it: updates its row, or adds it at the top (a new upload). Events that
   * arrive meanwhile make it read again rather than show a snapshot older than them.
   */
  async function fetchRow(uploadId) {
    const outstanding = fetching.get(uploadId);
    if (outstanding) {
      outstanding.dirty = true;
      return;
    }
    const tracker = { dirty: false };
    fetching.set(uploadId, tracker);
    try {
      const upload = await fetchSettled(() => api(`/uploads/${encodeURIComponent(uploadId)}`), tracker);
      const entry = rows.get(uploadId);
      if (entry) {
        Object.assign(entry.upload, upload);
        updateRow(entry);
      } else if (!filter || upload.status === filter) {
        if (!tbody) resetTable();
        addRow(upload, 'start');
        renderFrame();
      }
    } catch {
      // Gone already, or a hiccup: the next full refresh shows the truth.
    } finally {
      fetching.delete(uploadId);
      scheduleStats();
    }
  }

  function remove(uploadId) {
    rows.get(uploadId)?.row.remove();
    rows.delete(uploadId);
    renderFrame();
    scheduleStats();
  }

  /** One event of GET /events: an UploadEvent plus progress and rowsPerSecond. */
  function applyEvent(event) {
    if (!event || typeof event.uploadId !== 'string') return;
    touchedDuringLoad?.add(event.uploadId);
    const outstanding = fetching.get(event.uploadId);
    if (outstanding) outstanding.dirty = true;
    const entry = rows.get(event.uploadId);
    if (event.status === 'deleted') return remove(event.uploadId);
    if (!entry) return fetchRow(event.uploadId);
    const before = entry.upload.status;
    for (const name of ['status', 'attempt', 'rowsProcessed', 'rowsFailed', 'bytesProcessed', 'progress', 'rowsPerSecond', 'error']) {
      if (event[name] !== undefined) entry.upload[name] = event[name];
    }
    if (event.status === 'processing' && before !== 'processing') entry.upload.startedAt = event.at ?? entry.upload.startedAt;
    if (FINAL.has(event.status) && !FINAL.has(before)) entry.upload.completedAt = event.at ?? new Date().toISOString();
    updateRow(entry);
    if (before === entry.upload.status) return;
    scheduleStats();
    // The event carries counters, not timestamps: re-read a finished upload for its exact times.
    if (FINAL.has(entry.upload.status)) fetchRow(event.uploadId);
  }

  return {
    refresh() {
      loadStats();
      form.loadDatasets();
      return loadPage(false);
    },
    applyEvent,
    /** An upload this page deleted (the live feed carries no event for a deletion). */
    remove,
    clear() {
      loadSeq += 1;
      resetTable();
      setChildren(statsEl);
      setChildren(listEl);
      form.clearDatasets();
      moreButton.hidden = true;
    },
  };
}

function capitalize(s) {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
