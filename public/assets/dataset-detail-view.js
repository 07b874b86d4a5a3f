// One dataset (#/datasets/<name>): its version, table, key, format and columns; an additive edit in the
// editable columns table sent with PUT /datasets/:name (a change the server refuses — dropping or
// retyping a column, making one required — shows its 409 message); delete (refused while an upload
// that is not finished uses it: the server's message is shown). The built-in webhook_events is read-only.
import { api, DATASETS_CHANGED, sendJson } from './api.js';
import { createColumnsEditor, createFormatFields, describeFormat } from './dataset-editor.js';
import { el, setChildren, table, timeAgo } from './dom.js';

const COLUMNS = ['Name', 'Type', 'Required', 'Default', 'Max length', 'Pattern', 'Enum values', 'Aliases'].map((label) => ({ label }));
const datasetPath = (name) => `/datasets/${encodeURIComponent(name)}`;

/** @param {HTMLElement} root @param {{ navigate: (hash: string, confirmation?: string) => void }} app */
export function createDatasetDetailView(root, { navigate }) {
  let current = null; // { name, dataset }

  async function show(name) {
    const view = { name, dataset: null };
    current = view;
    setChildren(root, backLink(), el('p', { className: 'muted', role: 'status', text: 'Loading dataset…' }));
    try {
      view.dataset = await api(datasetPath(name));
    } catch (err) {
      if (current !== view) return;
      const text = err.status === 404 ? 'You have no dataset of this name, or it was deleted.' : `Could not load the dataset: ${err.message}`;
      setChildren(root, backLink(), el('h1', { id: 'dataset-title', tabIndex: -1, text: err.status === 404 ? 'Dataset not found' : 'Dataset unavailable' }), el('p', { className: 'error-box', role: 'alert', text }));
      return;
    }
    if (current === view) render(view);
  }

  /** Draws the page of `view.dataset`; returns `say(kind, text)` for the status line under its buttons. */
  function render(view) {
    const d = view.dataset;
    const status = el('div', { id: 'dataset-action-status', className: 'action-status', role: 'status' });
    const say = (kind, text) => {
      status.dataset.kind = kind;
      status.textContent = text;
    };
    const edit = el('button', { type: 'button', id: 'dataset-edit', className: 'secondary', text: 'Edit definition' });
    const remove = el('button', { type: 'button', className: 'danger', text: 'Delete dataset' });
    const editSlot = el('div');
    setChildren(
      root,
      backLink(),
      el('div', { className: 'panel' },
        el('div', { className: 'detail-head' }, el('h1', { id: 'dataset-title', tabIndex: -1 }, el('span', { className: 'mono', text: d.name })), d.builtIn ? el('span', { className: 'badge', text: 'built in' }) : null),
        el('dl', { className: 'facts' },
          fact('Version', d.builtIn ? '— (built in, cannot change)' : String(d.version)),
          fact('Table', el('code', { text: d.table })),
          fact('Key', d.key ? d.key.join(', ') : 'none (upsert needs one)'),
          fact('Format', describeFormat(d.format)),
          fact('Updated', timeAgo(d.updatedAt))),
        d.builtIn ? null : el('div', { className: 'actions' }, edit, remove),
        status),
      el('section', { className: 'panel', 'aria-labelledby': 'dataset-columns-title' },
        el('h2', { id: 'dataset-columns-title', text: `Columns (${d.columns.length})` }),
        table(COLUMNS, d.columns.map((c) => [
          el('span', { className: 'mono', text: c.name }),
          el('span', { className: 'mono', text: c.type }),
          c.required ? 'yes' : 'no',
          c.default ?? '—',
          c.maxLength === undefined ? '—' : String(c.maxLength),
          c.pattern ? el('code', { text: c.pattern }) : '—',
          c.values ? c.values.join(', ') : '—',
          c.aliases ? c.aliases.join(', ') : '—',
        ]), { caption: `Columns of ${d.name}`, rowKey: d.columns.map((c) => c.name) })),
      editSlot,
    );

    edit.addEventListener('click', () => {
      edit.disabled = true;
      setChildren(editSlot, editForm(view, {
        onSaved(saved) {
          view.dataset = saved;
          render(view).say('ok', saved.changed ? `Saved: version ${saved.version}.` : 'Nothing changed: the definition was already this one.');
        },
        onCancel() {
          setChildren(editSlot);
          edit.disabled = false;
          edit.focus();
        },
      }));
      editSlot.querySelector('input')?.focus();
    });
    remove.addEventListener('click', async () => {
      if (!window.confirm(`Delete the dataset "${d.name}" and drop its table with every row?`)) return;
      remove.disabled = true;
      try {
        await api(datasetPath(d.name), { method: 'DELETE' });
        window.dispatchEvent(new Event(DATASETS_CHANGED));
        navigate('#/datasets', `Deleted the dataset "${d.name}".`);
      } catch (err) {
        say('error', `Not deleted: ${err.message}`);
      } finally {
        remove.disabled = false;
      }
    });
    return { say };
  }

  /** The definition in the editable table; Save sends it whole with PUT (the server works out the change). */
  function editForm(view, { onSaved, onCancel }) {
    const d = view.dataset;
    const editor = createColumnsEditor('dataset-edit-columns');
    const format = createFormatFields('dataset-edit-format');
    editor.setColumns(d.columns, d.key ?? []);
    format.setFormat(d.format);
    const save = el('button', { type: 'submit', text: 'Save changes' });
    const result = el('p', { id: 'dataset-edit-result', className: 'form-result', role: 'alert' });
    const form = el('form', { id: 'dataset-edit-form', className: 'panel', noValidate: true, 'aria-labelledby': 'dataset-edit-title' },
      el('h2', { id: 'dataset-edit-title', text: 'Edit definition' }),
      el('p', { className: 'muted', text: 'Changes must be additive: add columns (not required), relax required, lengthen max length, add enum values or aliases, change the format. Dropping or retyping a column is refused.' }),
      editor.root,
      format.root,
      el('div', { className: 'actions' }, save, el('button', { type: 'button', className: 'secondary', text: 'Cancel', on: { click: onCancel } })),
      result);
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      result.replaceChildren();
      let body;
      try {
        body = { name: d.name, columns: editor.columns(), format: format.format() };
        const key = editor.key();
        if (key) body.key = key;
      } catch (err) {
        result.dataset.kind = 'error';
        result.textContent = err.message;
        return;
      }
      save.disabled = true;
      try {
        const saved = await sendJson(datasetPath(d.name), 'PUT', body);
        if (current !== view) return;
        window.dispatchEvent(new Event(DATASETS_CHANGED));
        onSaved(saved);
      } catch (err) {
        result.dataset.kind = 'error';
        result.textContent = `Not saved: ${err.message}`;
      } finally {
        save.disabled = false;
      }
    });
    return form;
  }

  return {
    show,
    hide() {
      current = null;
    },
  };
}

function backLink() {
  return el('a', { className: 'back', href: '#/datasets', text: '← All datasets' });
}

function fact(label, value) {
  return [el('dt', { text: label }), el('dd', {}, value)];
}
