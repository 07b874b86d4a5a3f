// The upload form: Uppy's Dashboard (file picker, drop area, byte progress with pause / resume / cancel)
// and its Tus plugin, which sends the file resumably to /files/ (tus 1.0): a pause, a dropped connection
// or a reload of the page continues from the bytes the server already holds. The dataset, the mode, the
// file format fields chosen (delimiter, encoding, dateFormat, decimalSeparator, quotes: blank ones are left
// to the dataset's format) and the callback URL travel in the tus metadata, as form fields do for POST /uploads. The dataset choice is
// GET /datasets (built-in webhook_events and the tenant's); the modes offered are those the dataset
// allows (upsert needs a key; webhook_events is append only). Uppy is served from the server itself
// (/assets/vendor/uppy/, its prebuilt bundle): no CDN.
import { Dashboard, Tus, Uppy } from '/assets/vendor/uppy/uppy.min.mjs';
import { api, authHeaders, DATASETS_CHANGED, errorFrom, parseJson } from './api.js';
import { el, setChildren } from './dom.js';

/** After a failed request tus-js-client asks HEAD for the offset and sends the rest; these are its waits. */
const RETRY_DELAYS_MS = [0, 1000, 3000, 5000, 10000, 20000];
const BUILT_IN = { name: 'webhook_events', builtIn: true, key: null };
const MODE_HELP = {
  append: 'Adds the file\'s rows.',
  upsert: 'Adds new rows and updates the rows whose key is already there',
  replace: 'Replaces all the dataset\'s rows with the file\'s, at once.',
};

/**
 * @param {HTMLFormElement} form
 * @param {{ onAccepted: (uploadId: string) => void }} hooks
 * @returns {{ loadDatasets: () => Promise<void>, clearDatasets: () => void }} the dataset choice, read again / emptied
 */
export function bindUploadForm(form, { onAccepted }) {
  const callbackInput = form.querySelector('#upload-callback');
  const datasetSelect = form.querySelector('#upload-dataset');
  const modeSelect = form.querySelector('#upload-mode');
  const modeHelp = form.querySelector('#upload-mode-help');
  const formatSelects = [...form.querySelectorAll('#upload-format select')];
  /** name → { name, builtIn, key } as GET /datasets lists them */
  let datasets = new Map([[BUILT_IN.name, BUILT_IN]]);
  const submit = form.querySelector('#upload-submit');
  const result = form.querySelector('#upload-result');
  let busy = false;

  const uppy = new Uppy({ id: 'upload', autoProceed: false, restrictions: { maxNumberOfFiles: 1 } })
    .use(Dashboard, {
      target: form.querySelector('#upload-dashboard'),
      inline: true,
      width: '100%',
      height: 240,
      theme: 'auto',
      // The form's own Upload button starts it (after the callback URL is checked).
      hideUploadButton: true,
      proudlyDisplayPoweredByUppy: false,
      showProgressDetails: true,
      note: 'One CSV file. Pause and resume at any time; a dropped connection resumes by itself.',
    })
    .use(Tus, {
      endpoint: '/files/',
      // The key of this tab, as every API call sends it (read when each upload starts).
      headers: () => authHeaders(),
      retryDelays: RETRY_DELAYS_MS,
      removeFingerprintOnSuccess: true,
      // name (the server's filename) and callbackUrl when one is given: see the submit handler.
      allowedMetaFields: true,
    });

  function showResult(kind, ...content) {
    result.dataset.kind = kind;
    setChildren(result, ...content);
  }

  function setBusy(value) {
    busy = value;
    submit.disabled = value;
    for (const input of [callbackInput, datasetSelect, modeSelect, ...formatSelects]) input.disabled = value;
    form.setAttribute('aria-busy', String(value));
  }

  uppy.on('upload-success', (file, response) => {
    // The request that completed the upload answers its id (else it is the id in the tus URL).
    const xhr = response?.body?.xhr;
    const uploadId = xhr?.getResponseHeader?.('Upload-Id') || new URL(response.uploadURL, location.href).pathname.split('/').pop();
    const link = el('a', { href: `#/uploads/${encodeURIComponent(uploadId)}`, text: 'view it' });
    showResult('ok', `Uploaded ${file.name}: queued for processing — `, link, '.');
    onAccepted(uploadId);
  });
  uppy.on('upload-error', (file, error) => {
    const res = error?.originalResponse;
    const apiError = res ? errorFrom(res.getStatus(), parseJson(res.getBody()), res.getBody()) : null;
    showResult('error', `Upload of ${file?.name ?? 'the file'} failed: ${apiError?.message ?? 'the server could not be reached. Try again.'}`);
  });
  uppy.on('complete', ({ failed }) => {
    setBusy(false);
    // Done: the form is ready for the next file (a failed one stays, for Uppy's retry button).
    if (failed.length > 0) return;
    form.reset();
    showModes();
    setTimeout(() => uppy.clear());
  });
  uppy.on('cancel-all', () => {
    if (busy) showResult('info', 'Upload cancelled.');
    setBusy(false);
  });

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    if (busy) return;
    const files = uppy.getFiles();
    if (files.length === 0) {
      showResult('error', 'Choose a CSV file first.');
      return;
    }
    const callbackUrl = callbackInput.value.trim();
    if (callbackUrl && !isHttpUrl(callbackUrl)) {
      showResult('error', 'The callback URL must be an absolute http:// or https:// URL.');
      callbackInput.focus();
      return;
    }
    if (modeSelect.value === 'replace' && !window.confirm(`Replace every row of "${datasetSelect.value}" with the rows of ${files[0].name}?`)) return;
    // Upload-Metadata carries every meta field: dataset and mode, the format fields and callbackUrl only when set.
    const options = { dataset: datasetSelect.value, mode: modeSelect.value };
    const format = Object.fromEntries(formatSelects.filter((s) => s.value !== '').map((s) => [s.name, s.value]));
    for (const file of files) {
      const { callbackUrl: _previous, ...meta } = file.meta;
      for (const s of formatSelects) delete meta[s.name];
      uppy.setFileState(file.id, { meta: { ...meta, ...options, ...format, ...(callbackUrl && { callbackUrl }) } });
    }
    showResult('info');
    setBusy(true);
    uppy.upload().catch((err) => {
      setBusy(false);
      showResult('error', `Upload failed: ${err.message}`);
    });
  });

  /** The modes the chosen dataset allows, keeping the current one when it still is. */
  function showModes() {
    const dataset = datasets.get(datasetSelect.value) ?? BUILT_IN;
    const modes = dataset.builtIn ? ['append'] : dataset.key ? ['append', 'upsert', 'replace'] : ['append', 'replace'];
    const chosen = modes.includes(modeSelect.value) ? modeSelect.value : 'append';
    setChildren(modeSelect, modes.map((m) => el('option', { value: m, text: m })));
    modeSelect.value = chosen;
    showModeHelp();
  }
  function showModeHelp() {
    const dataset = datasets.get(datasetSelect.value) ?? BUILT_IN;
    const help = MODE_HELP[modeSelect.value];
    modeHelp.textContent = modeSelect.value === 'upsert' ? `${help} (key: ${dataset.key.join(', ')}).` : dataset.builtIn ? `${help} The built-in dataset takes append only.` : help;
  }
  function showDatasets(items) {
    datasets = new Map(items.map((d) => [d.name, d]));
    const chosen = datasetSelect.value;
    setChildren(datasetSelect, items.map((d) => el('option', { value: d.name, text: d.builtIn ? `${d.name} (built in)` : d.name })));
    datasetSelect.value = datasets.has(chosen) ? chosen : BUILT_IN.name;
    showModes();
  }
  datasetSelect.addEventListener('change', showModes);
  modeSelect.addEventListener('change', showModeHelp);
  window.addEventListener(DATASETS_CHANGED, () => loadDatasets());
  showModes();

  async function loadDatasets() {
    try {
      showDatasets((await api('/datasets')).items);
    } catch (err) {
      if (err.status !== 401) modeHelp.textContent = `Your datasets could not be read (${err.message}); webhook_events is still offered.`;
    }
  }
  return { loadDatasets, clearDatasets: () => showDatasets([BUILT_IN]) };
}

function isHttpUrl(value) {
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:';
  } catch {
    return false;
  }
}
