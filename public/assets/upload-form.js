// The upload form: a real file picker, an optional callback URL, and a byte progress bar while the
// browser sends the file (XMLHttpRequest upload progress).
import { uploadFile } from './api.js';
import { el, formatBytes, setChildren } from './dom.js';

/**
 * @param {HTMLFormElement} form
 * @param {{ onAccepted: (uploadId: string) => void }} hooks
 */
export function bindUploadForm(form, { onAccepted }) {
  const fileInput = form.querySelector('#upload-file');
  const callbackInput = form.querySelector('#upload-callback');
  const submit = form.querySelector('#upload-submit');
  const cancel = form.querySelector('#upload-cancel');
  const progressBox = form.querySelector('#upload-progress');
  const bar = form.querySelector('#upload-bar');
  const progressText = form.querySelector('#upload-progress-text');
  const result = form.querySelector('#upload-result');
  let inFlight = null;

  function showResult(kind, ...content) {
    result.dataset.kind = kind;
    setChildren(result, ...content);
  }

  function setBusy(busy) {
    submit.disabled = busy;
    fileInput.disabled = busy;
    callbackInput.disabled = busy;
    cancel.hidden = !busy;
    form.setAttribute('aria-busy', String(busy));
  }

  function showProgress(loaded, total) {
    const percent = total > 0 ? Math.min(100, Math.floor((loaded / total) * 100)) : 0;
    bar.value = percent;
    bar.setAttribute('aria-valuetext', `${percent}%`);
    progressText.textContent =
      loaded >= total && total > 0
        ? `${formatBytes(total)} sent (100%) — waiting for the server…`
        : `${formatBytes(loaded)} of ${formatBytes(total)} sent (${percent}%)`;
  }

  cancel.addEventListener('click', () => inFlight?.abort());

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (inFlight) return;
    const file = fileInput.files?.[0];
    if (!file) {
      showResult('error', 'Choose a CSV file first.');
      fileInput.focus();
      return;
    }
    const callbackUrl = callbackInput.value.trim();
    if (callbackUrl && !isHttpUrl(callbackUrl)) {
      showResult('error', 'The callback URL must be an absolute http:// or https:// URL.');
      callbackInput.focus();
      return;
    }

    showResult('info');
    progressBox.hidden = false;
    showProgress(0, file.size);
    setBusy(true);
    inFlight = uploadFile(file, { callbackUrl }, showProgress);
    try {
      const accepted = await inFlight.promise;
      bar.value = 100;
      progressText.textContent = `${formatBytes(file.size)} sent (100%)`;
      const link = el('a', { href: `#/uploads/${encodeURIComponent(accepted.uploadId)}`, text: 'view it' });
      showResult('ok', `Uploaded ${file.name}: queued for processing — `, link, '.');
      form.reset();
      onAccepted(accepted.uploadId);
    } catch (err) {
      showResult('error', `Upload failed: ${err.message}`);
      progressBox.hidden = err.code === 'aborted';
    } finally {
      inFlight = null;
      setBusy(false);
    }
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
