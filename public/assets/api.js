// Talking to the API: the key (this tab only), JSON calls (reads, and writes with a body) that turn error
// bodies into readable errors, and authenticated file downloads. (Uploads go through Uppy's tus client: upload-form.js.)

const STORAGE_KEY = 'stream-api.apiKey';

export class ApiError extends Error {
  /** @param {number} status 0 when the server could not be reached */
  constructor(status, code, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

/** Dispatched on window when this tab created, changed or deleted one of the tenant's datasets. */
export const DATASETS_CHANGED = 'stream-api:datasets-changed';

const unauthorizedListeners = new Set();

export const apiKey = {
  get() {
    return sessionStorage.getItem(STORAGE_KEY) ?? '';
  },
  set(value) {
    sessionStorage.setItem(STORAGE_KEY, value);
  },
  clear() {
    sessionStorage.removeItem(STORAGE_KEY);
  },
  /** Called whenever the server says the key is not (or no longer) valid. */
  onRejected(listener) {
    unauthorizedListeners.add(listener);
  },
};

/** The Authorization header of `key` (default: this tab's key), as every request sends it. */
export function authHeaders(key = apiKey.get()) {
  return key ? { authorization: `Bearer ${key}` } : {};
}

/**
 * An error answer → ApiError with the API's message (`body`: the parsed JSON, or null).
 * @param {boolean} [storedKey] whether the request carried the stored key (a 401 then means it is no longer good)
 */
export function errorFrom(status, body, fallbackText, storedKey = true) {
  const err = body && typeof body === 'object' ? body.error : undefined;
  const message =
    typeof err?.message === 'string' && err.message
      ? err.message
      : fallbackText && fallbackText.length < 200
        ? fallbackText
        : `the server answered HTTP ${status}`;
  const error = new ApiError(status, typeof err?.code === 'string' ? err.code : `http_${status}`, message);
  if (status === 401 && storedKey) for (const listener of unauthorizedListeners) listener(error);
  return error;
}

/** The JSON of an answer's text, or null when it is not JSON. */
export function parseJson(text) {
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

// The server's clock as last seen (its Date header): token lifetimes are measured on it, so a browser
// whose clock is minutes off still renews in time.
let clockSkewMs = 0;
function noteServerDate(res) {
  const date = Date.parse(res.headers.get('date') ?? '');
  if (!Number.isNaN(date)) clockSkewMs = date - Date.now();
}
export const serverNow = () => Date.now() + clockSkewMs;

const networkError = () => new ApiError(0, 'network', 'Cannot reach the server. Check your connection and try again.');

/**
 * A JSON API call. Resolves to the parsed body (null for 204); rejects with ApiError carrying the
 * API's own message.
 * @param {string} path
 * @param {{ method?: string, key?: string, signal?: AbortSignal }} [options]
 */
export async function api(path, { method = 'GET', key, signal } = {}) {
  let res;
  try {
    res = await fetch(path, { method, headers: { accept: 'application/json', ...authHeaders(key) }, signal });
  } catch (err) {
    if (err?.name === 'AbortError') throw err;
    throw networkError();
  }
  noteServerDate(res);
  if (res.status === 204) return null;
  const text = await res.text();
  const body = parseJson(text);
  if (!res.ok) throw errorFrom(res.status, body, text, key === undefined);
  return body;
}

/**
 * A call with a body: `body` is sent as JSON, or as it is (a Blob, e.g. a slice of a file) when
 * `contentType` names its type. Resolves to the parsed answer (null for 204); rejects with ApiError
 * carrying the API's own message, like api().
 * @param {string} path @param {'POST' | 'PUT' | 'PATCH'} method @param {unknown} body @param {string} [contentType]
 */
export async function sendJson(path, method, body, contentType) {
  let res;
  try {
    res = await fetch(path, {
      method,
      headers: { accept: 'application/json', 'content-type': contentType ?? 'application/json', ...authHeaders() },
      body: contentType ? body : JSON.stringify(body),
    });
  } catch {
    throw networkError();
  }
  noteServerDate(res);
  if (res.status === 204) return null;
  const text = await res.text();
  const parsed = parseJson(text);
  if (!res.ok) throw errorFrom(res.status, parsed, text);
  return parsed;
}

/**
 * Runs `fetchOnce` again while live events arrived during the request (the caller sets
 * `tracker.dirty`), so a snapshot read before an event never overwrites what the event said.
 * @template T @param {() => Promise<T>} fetchOnce @param {{ dirty: boolean }} tracker @returns {Promise<T>}
 */
export async function fetchSettled(fetchOnce, tracker, maxTries = 5) {
  for (let attempt = 1; ; attempt++) {
    tracker.dirty = false;
    const result = await fetchOnce();
    if (!tracker.dirty || attempt >= maxTries) return result;
  }
}

/**
 * Downloads an authenticated file: a plain link cannot send the key header, so fetch it, then hand
 * the browser a blob URL to save.
 */
export async function downloadFile(path, fallbackName) {
  let res;
  try {
    res = await fetch(path, { headers: authHeaders() });
  } catch {
    throw networkError();
  }
  if (!res.ok) {
    const text = await res.text();
    throw errorFrom(res.status, parseJson(text), text);
  }
  const blob = await res.blob();
  const disposition = res.headers.get('content-disposition') ?? '';
  const name = /filename="([^"]+)"/.exec(disposition)?.[1] ?? fallbackName;
  const url = URL.createObjectURL(blob);
  const link = document.createElement('a');
  link.href = url;
  link.download = name;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  // The click starts the download synchronously; release the blob once the browser has taken it.
  setTimeout(() => URL.revokeObjectURL(url), 30_000);
  return { name, bytes: blob.size };
}
