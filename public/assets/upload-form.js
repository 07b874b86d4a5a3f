// The upload form: Uppy's Dashboard (file picker, drop area, byte progress with pause / resume / cancel)
// and its Tus plugin, which sends the file resumably to /files/ (tus 1.0): a pause, a dropped connection
// or a reload of the page continues from the bytes the server already holds. The callback URL travels in
// the tus metadata, as a form field does for POST /uploads. Uppy is served from the server itself
// (/assets/vendor/uppy/, its prebuilt bundle): no CDN.
import { Dashboard, Tus, Uppy } from '/assets/vendor/uppy/uppy.min.mjs';
import { authHeaders, errorFrom, parseJson } from './api.js';
import { el, setChildren } from './dom.js';

/** After a failed request tus-js-client asks HEAD for the offset and sends the rest; these are its waits. */
const RETRY_DELAYS_MS = [0, 1000, 3000, 5000, 10000, 20000];

/**
 * @param {HTMLFormElement} form
 * @param {{ onAccepted: (uploadId: string) => void }} hooks
 */
export function bindUploadForm(form, { onAccepted }) {
  const callbackInput = form.querySelector('#upload-callback');
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
    callbackInput.disabled = value;
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
    // Upload-Metadata carries every meta field: callbackUrl only when there is one.
    for (const file of files) {
      const { callbackUrl: _previous, ...meta } = file.meta;
      uppy.setFileState(file.id, { meta: callbackUrl ? { ...meta, callbackUrl } : meta });
    }
    showResult('info');
    setBusy(true);
    uppy.upload().catch((err) => {
      setBusy(false);
      showResult('error', `Upload failed: ${err.message}`);
    });
  });
}

function isHttpUrl(value) {
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:';
  } catch {
    return false;
  }
}
