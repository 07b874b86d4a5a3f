// The datasets pages: #/datasets (the tenant's datasets and the built-in webhook_events, and the create
// form: an editable columns table filled by hand or inferred from a sample file by POST /datasets/infer)
// and #/datasets/<name> (dataset-detail-view.js).
import { api, DATASETS_CHANGED, sendJson } from './api.js';
import { createColumnsEditor, createFormatFields, describeFormat } from './dataset-editor.js';
import { createDatasetDetailView } from './dataset-detail-view.js';
import { el, emptyState, setChildren, table, timeAgo } from './dom.js';

/** Bytes of a sample file sent to POST /datasets/infer (all it reads). */
const SAMPLE_BYTES = 1024 * 1024;
const COLUMNS = [{ label: 'Name' }, { label: 'Version', num: true }, { label: 'Columns', num: true }, { label: 'Key' }, { label: 'Updated' }];

/** `#/datasets/<name>` for a dataset name. */
const datasetHash = (name) => `#/datasets/${encodeURIComponent(name)}`;

/**
 * Both dataset pages behind one router hook for app.js.
 * @param {{ list: HTMLElement, detail: HTMLElement }} roots
 * @param {{ navigate: (hash: string, confirmation?: string) => void, show: (view: string) => void }} app
 */
export function createDatasetPages(roots, { navigate, show }) {
  const list = createDatasetsView(roots.list, { navigate });
  const detail = createDatasetDetailView(roots.detail, { navigate });
  return {
    /** Shows the page `hash` names and returns true, or returns false when it names neither. */
    route(hash, { focus = true } = {}) {
      const match = /^#\/datasets(?:\/([^/?#]+))?$/.exec(hash);
      if (!match) return false;
      if (match[1] === undefined) {
        detail.hide();
        show('datasets');
        list.show().then(() => focus && document.querySelector('#datasets-title')?.focus());
        return true;
      }
      let name = match[1];
      try {
        name = decodeURIComponent(name);
      } catch {
        // A malformed escape names no dataset: the API answers 404 and the page says so.
      }
      show('dataset');
      detail.show(name).then(() => focus && document.querySelector('#dataset-title')?.focus());
      return true;
    },
    hide() {
      detail.hide();
    },
  };
}

function createDatasetsView(root, { navigate }) {
  const tableSlot = el('div', { id: 'datasets', 'aria-busy': 'true' });
  const form = createForm({ navigate });
  let built = false;
  let seq = 0;

  async function load() {
    const mine = ++seq;
    tableSlot.setAttribute('aria-busy', 'true');
    try {
      const { items } = await api('/datasets');
      if (mine !== seq) return;
      setChildren(tableSlot, items.length === 0 ? emptyState('No datasets.') : table(
        COLUMNS,
        items.map((d) => [
          el('a', { href: datasetHash(d.name), className: 'mono', text: d.name }),
          d.builtIn ? 'built in' : String(d.version),
          String(d.columns.length),
          d.key ? d.key.join(', ') : '—',
          timeAgo(d.updatedAt),
        ]),
        { caption: 'Datasets', rowKey: items.map((d) => d.name) },
      ));
    } catch (err) {
      if (mine !== seq || err.status === 401) return;
      setChildren(tableSlot, el('p', { className: 'error-box', role: 'alert', text: `Could not load datasets: ${err.message}` }));
    } finally {
      if (mine === seq) tableSlot.setAttribute('aria-busy', 'false');
    }
  }

  return {
    show() {
      if (!built) {
        setChildren(root,
          el('h1', { id: 'datasets-title', tabIndex: -1, text: 'Datasets' }),
          el('p', { className: 'muted', text: 'Your own tables: each dataset is a table in your schema that uploads load into (choose it in the upload form). Changes are additive only.' }),
          tableSlot,
          form.root);
        built = true;
      }
      return load();
    },
  };
}

/** The create form: name, the columns table, key (checked columns), format; "infer from a sample file" fills them. */
function createForm({ navigate }) {
  const name = el('input', { id: 'dataset-name', type: 'text', required: true, autocomplete: 'off', spellcheck: 'false', placeholder: 'orders' });
  const sample = el('input', { id: 'dataset-sample', type: 'file', accept: '.csv,.tsv,.txt,.gz,text/csv,text/plain' });
  const inferButton = el('button', { type: 'button', className: 'secondary', id: 'dataset-infer', text: 'Infer from sample' });
  const inferResult = el('div', { id: 'dataset-infer-result', className: 'form-result', role: 'status' });
  const editor = createColumnsEditor('dataset-columns');
  const format = createFormatFields('dataset-format');
  const submit = el('button', { type: 'submit', text: 'Create dataset' });
  const result = el('p', { id: 'dataset-create-result', className: 'form-result', role: 'status' });
  editor.setColumns([]);
  format.setFormat();

  const root = el('form', { id: 'dataset-form', className: 'panel', noValidate: true, 'aria-labelledby': 'dataset-form-title' },
    el('h2', { id: 'dataset-form-title', text: 'New dataset' }),
    el('div', { className: 'fields' },
      el('div', { className: 'field' },
        el('label', { for: 'dataset-name' }, 'Name', el('span', { className: 'muted', text: ' (the table name: a-z, 0-9, _)' })),
        name),
      el('div', { className: 'field' },
        el('label', { for: 'dataset-sample' }, 'Sample file', el('span', { className: 'muted', text: ` (optional: its first ${SAMPLE_BYTES / 1024 / 1024} MiB proposes the columns)` })),
        el('div', { className: 'inline-actions' }, sample, inferButton))),
    inferResult,
    el('h3', { text: 'Columns' }),
    editor.root,
    format.root,
    el('div', { className: 'actions' }, submit),
    result);

  const say = (node, kind, ...content) => {
    node.dataset.kind = kind;
    setChildren(node, ...content);
  };

  inferButton.addEventListener('click', async () => {
    const file = sample.files?.[0];
    if (!file) {
      say(inferResult, 'error', 'Choose a sample file first.');
      return sample.focus();
    }
    const proposed = name.value.trim() || file.name.replace(/\.[^.]*$/, '');
    inferButton.disabled = true;
    say(result, 'info');
    say(inferResult, 'info', `Reading ${file.name}…`);
    try {
      const inferred = await sendJson(`/datasets/infer?${new URLSearchParams({ name: proposed })}`, 'POST', file.slice(0, SAMPLE_BYTES), 'text/csv');
      const { definition, columns, dialect, sampledRows } = inferred;
      name.value = definition.name;
      const hints = Object.fromEntries(columns.map((c) => [c.name, `header "${c.header}"; e.g. ${c.samples.join(', ') || '(empty)'}`]));
      editor.setColumns(definition.columns, definition.key ?? [], hints);
      format.setFormat({ ...dialect, ...definition.format });
      say(inferResult, 'ok',
        el('p', { text: `Proposed ${columns.length} columns from ${sampledRows} rows; format: ${describeFormat(definition.format)}. Check the types below, then create the dataset.` }),
        (inferred.warnings ?? []).length > 0 ? el('ul', {}, inferred.warnings.map((w) => el('li', { text: w }))) : null);
    } catch (err) {
      say(inferResult, 'error', `Could not infer a definition: ${err.message}`);
    } finally {
      inferButton.disabled = false;
    }
  });

  root.addEventListener('submit', async (event) => {
    event.preventDefault();
    let body;
    try {
      if (!name.value.trim()) throw new Error('Enter the dataset name.');
      body = { name: name.value.trim(), columns: editor.columns(), format: format.format() };
      const key = editor.key();
      if (key) body.key = key;
    } catch (err) {
      return say(result, 'error', err.message);
    }
    submit.disabled = true;
    say(result, 'info');
    try {
      const created = await sendJson('/datasets', 'POST', body);
      window.dispatchEvent(new Event(DATASETS_CHANGED));
      root.reset();
      editor.setColumns([]);
      format.setFormat();
      setChildren(inferResult);
      navigate(datasetHash(created.name), `Created the dataset "${created.name}" (table ${created.table}).`);
    } catch (err) {
      say(result, 'error', `Not created: ${err.message}`);
    } finally {
      submit.disabled = false;
    }
  });
  return { root };
}
