// DOM building and formatting. Server data only ever enters the page as text (textContent, attribute
// values) — never as markup.

/**
 * el('a', { href: '#/x', className: 'y', dataset: { id: '1' }, on: { click } }, 'text', childNode)
 * Strings and numbers become text nodes; null/undefined/false children are skipped.
 */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (/html/i.test(name)) throw new Error(`el(): refusing to set ${name}`);
    if (value === undefined || value === null || value === false) continue;
    if (name === 'className') node.className = value;
    else if (name === 'text') node.textContent = String(value);
    else if (name === 'dataset') Object.assign(node.dataset, value);
    else if (name === 'on') for (const [type, fn] of Object.entries(value)) node.addEventListener(type, fn);
    else if (name in node && typeof value !== 'string') node[name] = value;
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces every child of `node`. */
export function setChildren(node, ...children) {
  node.replaceChildren();
  append(node, children);
}

const numberFormat = new Intl.NumberFormat();
export const formatNumber = (n) => (typeof n === 'number' && Number.isFinite(n) ? numberFormat.format(n) : '—');

export function formatBytes(bytes) {
  if (typeof bytes !== 'number' || !Number.isFinite(bytes)) return '—';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value >= 100 || unit === 0 ? Math.round(value) : value.toFixed(1)} ${units[unit]}`;
}

export function formatPercent(fraction) {
  if (typeof fraction !== 'number' || !Number.isFinite(fraction)) return '—';
  return `${Math.floor(Math.max(0, Math.min(1, fraction)) * 100)}%`;
}

const relativeFormat = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });
const STEPS = [
  [60, 'second'],
  [60, 'minute'],
  [24, 'hour'],
  [7, 'day'],
  [4.35, 'week'],
  [12, 'month'],
  [Infinity, 'year'],
];

export function relativeTime(iso, now = Date.now()) {
  const at = Date.parse(iso);
  if (Number.isNaN(at)) return '—';
  let delta = (at - now) / 1000;
  if (Math.abs(delta) < 5) return 'just now';
  for (const [size, unit] of STEPS) {
    if (Math.abs(delta) < size) return relativeFormat.format(Math.round(delta), unit);
    delta /= size;
  }
  return new Date(at).toLocaleString();
}

/** A <time> that app.js keeps up to date ("12 seconds ago"); the exact time is in its tooltip. */
export function timeAgo(iso) {
  if (!iso) return el('span', { className: 'muted', text: '—' });
  return el('time', { dateTime: iso, title: new Date(iso).toLocaleString(), dataset: { relative: '' } }, relativeTime(iso));
}

export function refreshRelativeTimes(root = document) {
  for (const node of root.querySelectorAll('time[data-relative]')) node.textContent = relativeTime(node.dateTime);
}

export function badge(status) {
  return el('span', { className: 'badge', dataset: { status: String(status) }, text: String(status) });
}

/** Rows per second: the live rate while processing, else the average over the whole load. */
export function rowsPerSecond(upload) {
  if (upload.status === 'processing' && typeof upload.rowsPerSecond === 'number') return upload.rowsPerSecond;
  const started = Date.parse(upload.startedAt ?? '');
  const ended = Date.parse(upload.completedAt ?? '');
  if (Number.isNaN(started) || Number.isNaN(ended)) return null;
  const seconds = Math.max((ended - started) / 1000, 0.001);
  return (upload.rowsProcessed + upload.rowsFailed) / seconds;
}

export function formatRate(rate) {
  if (rate === null || rate === undefined || !Number.isFinite(rate)) return '—';
  return `${formatNumber(Math.round(rate))}/s`;
}

/**
 * A table that stacks into labelled cards on narrow screens (the label comes from data-label).
 * @param {{ label: string, num?: boolean }[]} columns
 * @param {Node[][]} rows cells as nodes or text, in column order
 */
export function table(columns, rows, { caption, rowKey } = {}) {
  const head = el('thead', {}, el('tr', {}, columns.map((c) => el('th', { scope: 'col', className: c.num ? 'num' : undefined }, c.label))));
  const body = el(
    'tbody',
    {},
    rows.map((cells, i) =>
      el(
        'tr',
        { dataset: rowKey ? { key: rowKey[i] } : undefined },
        cells.map((cell, j) => el('td', { 'data-label': columns[j].label, className: columns[j].num ? 'num' : undefined }, cell)),
      ),
    ),
  );
  return el('div', { className: 'table-wrap' }, el('table', { className: 'stack' }, caption ? el('caption', { className: 'visually-hidden' }, caption) : null, head, body));
}

export function emptyState(text) {
  return el('p', { className: 'empty', text });
}
