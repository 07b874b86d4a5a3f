// Entry point: the API key, the hash router (#/, #/uploads/<id>, #/endpoints[/<id>], #/datasets[/<name>]), the live stream and its fallback.
import { api, apiKey } from './api.js';
import { createDatasetPages } from './datasets-view.js';
import { createDetailView } from './detail-view.js';
import { refreshRelativeTimes } from './dom.js';
import { createEndpointPages } from './endpoints-view.js';
import { createListView } from './list-view.js';
import { createLiveStream } from './live.js';

const POLL_MS = 5000;
const LIVE_LABELS = {
  off: 'Not connected',
  connecting: 'Connecting…',
  live: 'Live',
  reconnecting: 'Reconnecting…',
  polling: 'Refreshing every 5 s',
};

const $ = (selector) => document.querySelector(selector);
const views = {
  welcome: $('#view-welcome'), list: $('#view-list'), detail: $('#view-detail'),
  endpoints: $('#view-endpoints'), endpoint: $('#view-endpoint'),
  datasets: $('#view-datasets'), dataset: $('#view-dataset'),
};
const notice = $('#notice');
const liveBadge = $('#live');
const keyForm = $('#key-form');
const keyInput = $('#api-key');
const forgetButton = $('#forget-key');

let noticeTimer = null;
/** Errors stay until the next action; confirmations go away by themselves, or on the next page. */
function notify(text, kind = 'error') {
  clearTimeout(noticeTimer);
  notice.dataset.kind = kind;
  notice.textContent = text;
  notice.hidden = false;
  if (kind !== 'error') noticeTimer = setTimeout(clearNotice, 10_000);
}
function clearNotice() {
  clearTimeout(noticeTimer);
  notice.hidden = true;
  notice.textContent = '';
}

let noticeForNextPage = null;
/** Goes to `hash`, with an optional confirmation to show there ("deleted …"). */
function navigate(hash, confirmation) {
  noticeForNextPage = confirmation ?? null;
  if (location.hash === hash) onRouteChange();
  else location.hash = hash;
}

function onRouteChange() {
  if (!notice.hidden && notice.dataset.kind !== 'error') clearNotice();
  if (noticeForNextPage) notify(noticeForNextPage, 'ok');
  noticeForNextPage = null;
  route();
}

const list = createListView(views.list);
const detail = createDetailView(views.detail, { navigate, onDeleted: (id) => list.remove(id) });
const endpointPages = createEndpointPages({ list: views.endpoints, detail: views.endpoint }, { navigate, show });
const datasetPages = createDatasetPages({ list: views.datasets, detail: views.dataset }, { navigate, show });
let liveState = 'off';
const live = createLiveStream({
  onUpload(event) {
    list.applyEvent(event);
    detail.applyEvent(event);
  },
  onState(state, reason) {
    liveState = state;
    liveBadge.dataset.state = state;
    liveBadge.textContent = LIVE_LABELS[state] ?? state;
    liveBadge.title = reason ?? '';
  },
  onResync: refreshAll,
});

function refreshAll() {
  if (!apiKey.get()) return;
  list.refresh();
  detail.refresh();
}

function show(name) {
  for (const [key, node] of Object.entries(views)) node.hidden = key !== name;
}

/** Which page the hash names: the list, or one upload. */
function route({ focus = true } = {}) {
  if (!apiKey.get()) {
    detail.hide();
    endpointPages.hide();
    datasetPages.hide();
    return show('welcome');
  }
  if (endpointPages.route(location.hash, { focus })) return detail.hide();
  endpointPages.hide();
  if (datasetPages.route(location.hash, { focus })) return detail.hide();
  datasetPages.hide();
  const match = /^#\/uploads\/([^/?#]+)$/.exec(location.hash);
  if (match) {
    let id = match[1];
    try {
      id = decodeURIComponent(id);
    } catch {
      // A malformed escape names no upload; the API answers 404 and the page says so.
    }
    show('detail');
    if (detail.uploadId !== id) {
      detail.show(id).then(() => {
        if (focus) $('#detail-title')?.focus();
      });
    }
  } else {
    detail.hide();
    show('list');
    if (focus) $('#list-title').focus?.();
  }
}

/** Starts everything for the key in session storage. */
function start() {
  const hasKey = Boolean(apiKey.get());
  forgetButton.hidden = !hasKey;
  if (!hasKey) {
    live.stop();
    list.clear();
    return route({ focus: false });
  }
  list.refresh();
  live.start();
  route({ focus: false });
}

keyForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  const key = keyInput.value.trim();
  if (!key) {
    notify('Enter an API key.');
    keyInput.focus();
    return;
  }
  const submit = keyForm.querySelector('button[type="submit"]');
  submit.disabled = true;
  try {
    // Check the key before keeping it, so a typo gets a message rather than an empty page.
    await api('/uploads/stats', { key });
    apiKey.set(key);
    clearNotice();
    start();
  } catch (err) {
    notify(err.status === 401 ? `That API key was not accepted (${err.message}).` : `Could not check the key: ${err.message}`);
    keyInput.focus();
  } finally {
    submit.disabled = false;
  }
});

forgetButton.addEventListener('click', () => {
  apiKey.clear();
  keyInput.value = '';
  clearNotice();
  start();
  keyInput.focus();
});

// A key revoked (or mistyped) while the page is open: stop, say so, ask again.
apiKey.onRejected((err) => {
  if (!apiKey.get()) return;
  apiKey.clear();
  start();
  notify(`The API key is no longer accepted (${err.message}). Enter a valid key above.`);
  keyInput.focus();
});

window.addEventListener('hashchange', onRouteChange);

// Without a live stream (not available, or reconnecting) the page still moves, just more slowly.
setInterval(() => {
  if (apiKey.get() && (liveState === 'polling' || liveState === 'reconnecting')) refreshAll();
}, POLL_MS);
setInterval(() => refreshRelativeTimes(), 10_000);

keyInput.value = apiKey.get();
start();
