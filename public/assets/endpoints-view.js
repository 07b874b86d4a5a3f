// The endpoints pages: #/endpoints (the list with each endpoint's health, and the create form that shows
// the new secret once) and #/endpoints/<id> (endpoint-detail-view.js). Health changes without a live
// event (the dispatcher works on its own), so the list is read again every few seconds while shown.
import { api, sendJson } from './api.js';
import { createEndpointDetailView } from './endpoint-detail-view.js';
import { healthBadge, secretBox, successRate } from './endpoints-common.js';
import { el, emptyState, setChildren, table, timeAgo } from './dom.js';

const POLL_MS = 4000;
const PAGE_SIZE = 50;
const CHANNELS = ['webhook', 'slack', 'email'];
const COLUMNS = [
  { label: 'URL' },
  { label: 'Description' },
  { label: 'Channel' },
  { label: 'Event types' },
  { label: 'State' },
  { label: 'Success (1 h)', num: true },
  { label: 'Last success' },
  { label: 'Failures in a row', num: true },
];

/**
 * Both endpoint pages behind one router hook for app.js.
 * @param {{ list: HTMLElement, detail: HTMLElement }} roots
 * @param {{ navigate: (hash: string, confirmation?: string) => void, show: (view: string) => void }} app
 */
export function createEndpointPages(roots, { navigate, show }) {
  const list = createEndpointsView(roots.list);
  const detail = createEndpointDetailView(roots.detail, { navigate });
  return {
    /** Shows the page `hash` names and returns true, or returns false when it names neither. */
    route(hash, { focus = true } = {}) {
      const match = /^#\/endpoints(?:\/([^/?#]+))?$/.exec(hash);
      if (!match) return false;
      if (match[1] === undefined) {
        detail.hide();
        show('endpoints');
        list.show();
        if (focus) document.querySelector('#endpoints-title')?.focus();
        return true;
      }
      let id = match[1];
      try {
        id = decodeURIComponent(id);
      } catch {
        // A malformed escape names no endpoint: the API answers 404 and the page says so.
      }
      list.hide();
      show('endpoint');
      if (detail.endpointId !== id) detail.show(id).then(() => focus && document.querySelector('#endpoint-title')?.focus());
      return true;
    },
    hide() {
      list.hide();
      detail.hide();
    },
  };
}

function createEndpointsView(root) {
  const tableSlot = el('div', { id: 'endpoints', 'aria-busy': 'true' });
  const more = el('button', { type: 'button', className: 'secondary', text: 'Load more', hidden: true });
  const form = createForm();
  let built = false;
  let items = [];
  let nextCursor = null;
  let timer = null;
  let seq = 0;
  let lastRendered = '';

  function build() {
    setChildren(
      root,
      el('h1', { id: 'endpoints-title', tabIndex: -1, text: 'Endpoints' }),
      el('p', { className: 'muted', text: 'Where your events go: each endpoint gets the event types it chose, signed with its own secret.' }),
      form.root,
      el('h2', { id: 'endpoints-list-title', text: 'Your endpoints' }),
      tableSlot,
      more,
    );
    more.addEventListener('click', () => load(items.length + PAGE_SIZE));
    built = true;
  }

  /** Reads the first `count` endpoints (newest first) and shows them; polls while the page is shown. */
  async function load(count = Math.max(PAGE_SIZE, items.length)) {
    clearTimeout(timer);
    const mine = ++seq;
    try {
      const read = [];
      let cursor = null;
      do {
        const params = new URLSearchParams({ limit: String(Math.min(100, count - read.length)) });
        if (cursor) params.set('cursor', cursor);
        const page = await api(`/endpoints?${params}`);
        read.push(...page.items);
        cursor = page.nextCursor;
      } while (cursor && read.length < count);
      if (mine !== seq) return;
      items = read;
      nextCursor = cursor;
      render();
    } catch (err) {
      if (mine !== seq || err.status === 401) return;
      lastRendered = '';
      setChildren(tableSlot, el('p', { className: 'error-box', role: 'alert', text: `Could not load endpoints: ${err.message}` }));
    } finally {
      if (mine === seq) {
        tableSlot.setAttribute('aria-busy', 'false');
        timer = setTimeout(load, POLL_MS);
      }
    }
  }

  function render() {
    more.hidden = nextCursor === null;
    // Unchanged answers leave the DOM (focus, selection) alone; relative times refresh by themselves.
    const snapshot = JSON.stringify(items);
    if (snapshot === lastRendered) return;
    lastRendered = snapshot;
    if (items.length === 0) return setChildren(tableSlot, emptyState('No endpoints yet: create one above.'));
    setChildren(
      tableSlot,
      table(
        COLUMNS,
        items.map((e) => [
          el('a', { href: `#/endpoints/${encodeURIComponent(e.id)}`, className: 'mono endpoint-url', text: e.url }),
          e.description || '—',
          e.channel,
          e.eventTypes.length === 0 ? 'all' : e.eventTypes.join(', '),
          healthBadge(e.health),
          successRate(e.health),
          timeAgo(e.health.lastSuccessAt),
          String(e.health.consecutiveFailures),
        ]),
        { caption: 'Endpoints', rowKey: items.map((e) => e.id) },
      ),
    );
  }

  form.onCreated = () => load();

  return {
    show() {
      if (!built) build();
      form.loadEventTypes();
      return load();
    },
    hide() {
      seq += 1; // a read still out is dropped
      clearTimeout(timer);
      timer = null;
      form.clearSecret();
    },
  };
}

/** The create form: url, description, channel, event types (GET /event-types), rate limit. */
function createForm() {
  const url = el('input', { id: 'endpoint-url', name: 'url', type: 'text', inputMode: 'url', required: true, autocomplete: 'off', spellcheck: 'false', placeholder: 'https://example.com/hooks' });
  const description = el('input', { id: 'endpoint-description', name: 'description', type: 'text', maxLength: 500, autocomplete: 'off' });
  const channel = el('select', { id: 'endpoint-channel', name: 'channel' }, CHANNELS.map((c) => el('option', { value: c, text: c })));
  const rate = el('input', { id: 'endpoint-rate', name: 'rateLimitPerSecond', type: 'number', min: 1, max: 10000, step: 1, inputMode: 'numeric', placeholder: 'unlimited' });
  const types = el('div', { className: 'checks' }, el('span', { className: 'muted', text: 'Loading event types…' }));
  const submit = el('button', { type: 'submit', text: 'Create endpoint' });
  const result = el('div', { id: 'endpoint-create-result', className: 'form-result', role: 'status' });
  const field = (id, label, input, hint) => el('div', { className: 'field' }, el('label', { for: id }, label, hint ? el('span', { className: 'muted', text: ` ${hint}` }) : null), input);
  const root = el('form', { id: 'endpoint-form', className: 'panel', noValidate: true, 'aria-labelledby': 'endpoint-form-title' },
    el('h2', { id: 'endpoint-form-title', text: 'New endpoint' }),
    el('div', { className: 'fields' },
      field('endpoint-url', 'URL', url, '(for email: mailto:someone@example.com)'),
      field('endpoint-description', 'Description', description, '(optional)'),
      field('endpoint-channel', 'Channel', channel),
      field('endpoint-rate', 'Rate limit per second', rate, '(optional)')),
    el('fieldset', { className: 'event-types' }, el('legend', { text: 'Event types (none checked: all)' }), types),
    el('div', { className: 'actions' }, submit),
    result);
  let typesLoaded = false;

  const view = {
    root,
    onCreated: () => {},
    async loadEventTypes() {
      if (typesLoaded) return;
      try {
        const { items } = await api('/event-types');
        typesLoaded = true;
        setChildren(types, items.map((t) =>
          el('label', { className: 'check', title: t.description },
            el('input', { type: 'checkbox', name: 'eventTypes', value: t.name }), ' ', el('span', { className: 'mono', text: t.name }))));
      } catch (err) {
        setChildren(types, el('span', { className: 'error-box', text: `Could not load event types: ${err.message}` }));
      }
    },
    clearSecret() {
      result.replaceChildren();
    },
  };

  root.addEventListener('submit', async (event) => {
    event.preventDefault();
    result.replaceChildren();
    delete result.dataset.kind;
    if (!url.value.trim()) {
      result.dataset.kind = 'error';
      result.textContent = 'Enter the URL to send events to.';
      url.focus();
      return;
    }
    const body = {
      url: url.value.trim(),
      description: description.value.trim(),
      channel: channel.value,
      eventTypes: [...types.querySelectorAll('input:checked')].map((box) => box.value),
      ...(rate.value.trim() !== '' && { rateLimitPerSecond: Number(rate.value) }),
    };
    submit.disabled = true;
    try {
      const created = await sendJson('/endpoints', 'POST', body);
      root.reset();
      result.dataset.kind = 'ok';
      setChildren(result,
        secretBox(created.secret, `Created the endpoint for ${created.url}. Its signing secret:`),
        el('a', { href: `#/endpoints/${encodeURIComponent(created.id)}`, text: 'Open the endpoint' }));
      view.onCreated(created);
    } catch (err) {
      result.dataset.kind = 'error';
      result.textContent = `Not created: ${err.message}`;
    } finally {
      submit.disabled = false;
    }
  });
  return view;
}
