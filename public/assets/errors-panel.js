// Rejected rows of one upload (GET /uploads/:id/errors, paged) and the errors.csv download.
import { api, downloadFile } from './api.js';
import { el, emptyState, formatBytes, formatNumber, setChildren, table } from './dom.js';

const COLUMNS = [{ label: 'Line', num: true }, { label: 'Column' }, { label: 'Code' }, { label: 'Message' }, { label: 'Original line' }];

export function createErrorsPanel(uploadId) {
  const encoded = encodeURIComponent(uploadId);
  const countEl = el('span', { className: 'muted' });
  const downloadStatus = el('p', { className: 'action-status', role: 'status' });
  const download = el('button', { type: 'button', className: 'secondary', text: 'Download errors.csv' });
  const body = el('div', { 'aria-live': 'polite' }, el('p', { className: 'muted', text: 'Loading rejected rows…' }));
  const more = el('button', { type: 'button', className: 'secondary', text: 'Load more', hidden: true });
  const root = el(
    'section',
    { className: 'panel', 'aria-labelledby': `errors-title-${uploadId}` },
    el('div', { className: 'section-head' },
      el('h2', { id: `errors-title-${uploadId}` }, 'Rejected rows ', countEl),
      download),
    downloadStatus,
    body,
    more,
  );

  let items = [];
  let cursor = null;
  let seq = 0;

  download.addEventListener('click', async () => {
    download.disabled = true;
    downloadStatus.dataset.kind = 'info';
    downloadStatus.textContent = 'Preparing download…';
    try {
      const file = await downloadFile(`/uploads/${encoded}/errors.csv`, `errors-${uploadId}.csv`);
      downloadStatus.dataset.kind = 'ok';
      downloadStatus.textContent = `Downloaded ${file.name} (${formatBytes(file.bytes)}).`;
    } catch (err) {
      downloadStatus.dataset.kind = 'error';
      downloadStatus.textContent = `Download failed: ${err.message}`;
    } finally {
      download.disabled = false;
    }
  });
  more.addEventListener('click', () => load(true));

  async function load(append = false) {
    const mine = ++seq;
    const params = new URLSearchParams({ limit: '100' });
    if (append && cursor) params.set('cursor', cursor);
    more.disabled = true;
    try {
      const page = await api(`/uploads/${encoded}/errors?${params}`);
      if (mine !== seq) return;
      items = append ? items.concat(page.items) : page.items;
      cursor = page.nextCursor;
      render(page.rowsFailed);
    } catch (err) {
      if (mine !== seq) return;
      setChildren(body, el('p', { className: 'error-box', role: 'alert', text: `Could not load rejected rows: ${err.message}` }));
    } finally {
      more.disabled = false;
    }
  }

  function render(rowsFailed) {
    countEl.textContent = `(${formatNumber(rowsFailed)})`;
    download.disabled = rowsFailed === 0;
    download.title = rowsFailed === 0 ? 'No rejected rows to download' : '';
    more.hidden = !cursor;
    if (items.length === 0) {
      setChildren(body, emptyState(rowsFailed > 0 ? 'Rejected rows are not available.' : 'No rejected rows.'));
      return;
    }
    const rows = items.map((e) => [
      String(e.line),
      e.column ?? '—',
      el('code', { text: e.code }),
      e.message,
      el('code', { className: 'raw', text: e.raw ?? '' }),
    ]);
    const note =
      rowsFailed > items.length && !cursor
        ? el('p', { className: 'muted', text: `Showing the first ${formatNumber(items.length)} of ${formatNumber(rowsFailed)} rejected rows (the server keeps a capped sample).` })
        : null;
    setChildren(body, table(COLUMNS, rows, { caption: 'Rejected rows' }), note);
  }

  return { root, load: () => load(false) };
}
