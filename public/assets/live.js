// Live updates: GET /events (Server-Sent Events of every upload of the tenant). EventSource cannot send
// headers, so it carries a short-lived token from POST /auth/token, renewed before it expires by
// opening a fresh stream and closing the old one only once the new one is open (no gap).
import { api, serverNow } from './api.js';

const RENEW_MARGIN_MS = 60_000;
const MIN_RENEW_MS = 5_000;
const MAX_BACKOFF_MS = 30_000;

/**
 * @param {{
 *   onUpload: (event: object) => void,
 *   onState: (state: 'connecting'|'live'|'reconnecting'|'polling'|'off', detail?: string) => void,
 *   onResync: () => void,
 * }} handlers
 */
export function createLiveStream({ onUpload, onState, onResync }) {
  let current = null; // the open EventSource whose events we use
  let generation = 0; // bumps on stop(): late callbacks of an older run do nothing
  let renewTimer = null;
  let retryTimer = null;
  let backoff = 1000;
  let everOpened = false;
  let interrupted = false; // the open stream dropped and the browser is reconnecting it

  function clearTimers() {
    clearTimeout(renewTimer);
    clearTimeout(retryTimer);
    renewTimer = retryTimer = null;
  }

  function retryLater(gen, state, detail) {
    if (gen !== generation) return;
    onState(state, detail);
    clearTimeout(retryTimer);
    retryTimer = setTimeout(() => connect(gen), backoff);
    backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
  }

  async function connect(gen) {
    if (gen !== generation) return;
    clearTimers();
    let grant;
    try {
      grant = await api('/auth/token', { method: 'POST' });
    } catch (err) {
      if (gen !== generation) return;
      if (err.status === 401) return stop(); // app.js shows the key problem
      // No live routes on this server (404) or a transient failure: fall back to polling meanwhile.
      return retryLater(gen, 'polling', err.status === 404 ? 'live updates are not available' : err.message);
    }
    if (gen !== generation) return;
    if (!current) onState(everOpened ? 'reconnecting' : 'connecting');

    const source = new EventSource(`/events?token=${encodeURIComponent(grant.token)}`);
    source.addEventListener('upload', (e) => {
      if (source !== current) return;
      let data;
      try {
        data = JSON.parse(e.data);
      } catch {
        return;
      }
      onUpload(data);
    });
    source.onopen = () => {
      if (gen !== generation) return source.close();
      const previous = current;
      current = source;
      if (previous && previous !== source) previous.close();
      // Whatever happened while no stream was open (first load aside) is caught up by a re-read;
      // a renewal (the old stream still open until now) missed nothing.
      const missed = everOpened && (!previous || (previous === source && interrupted));
      interrupted = false;
      everOpened = true;
      backoff = 1000;
      onState('live');
      if (missed) onResync();
    };
    source.onerror = () => {
      if (gen !== generation) return source.close();
      if (source.readyState === EventSource.CONNECTING) {
        // The browser reconnects by itself (same URL, same token); show it and keep waiting.
        if (source === current) {
          interrupted = true;
          onState('reconnecting');
        }
        return;
      }
      // CLOSED: refused (expired token, server gone, not found). Start over with a new token.
      // (A renewal that fails leaves the older stream serving meanwhile.)
      source.close();
      if (source === current) current = null;
      retryLater(gen, current ? 'live' : 'reconnecting');
    };

    const lifetime = Date.parse(grant.expiresAt) - serverNow();
    const renewIn = Number.isFinite(lifetime) ? Math.max(MIN_RENEW_MS, lifetime - RENEW_MARGIN_MS) : 4 * 60_000;
    renewTimer = setTimeout(() => connect(gen), renewIn);
  }

  function stop() {
    generation += 1;
    clearTimers();
    current?.close();
    current = null;
    everOpened = false;
    interrupted = false;
    backoff = 1000;
    onState('off');
  }

  return {
    start() {
      stop();
      connect(generation);
    },
    stop,
    get connected() {
      return current !== null && current.readyState === EventSource.OPEN;
    },
  };
}
