// The editable parts of a dataset definition (README "Datasets"; src/datasets/definition.ts): a columns
// table (add/remove rows; name, type with numeric(p,s), required, key, default, maxLength, pattern, enum
// values, header aliases) and the input format selects. Both read back as the JSON that POST /datasets
// and PUT /datasets/:name take; the server checks everything again and says what is wrong.
import { el, setChildren } from './dom.js';

export const TYPES = ['text', 'integer', 'bigint', 'numeric', 'boolean', 'uuid', 'date', 'timestamptz', 'jsonb', 'enum'];
const NUMERIC = /^numeric\s*(?:\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\))?$/i;

/** The format keys, their choices (the first is RFC 4180's default) and labels: src/ingest/csv/input-format.ts. */
const FORMAT_FIELDS = [
  { key: 'delimiter', label: 'Delimiter', options: [[',', ', (comma)'], [';', '; (semicolon)'], ['\t', 'Tab'], ['|', '| (pipe)']] },
  { key: 'encoding', label: 'Encoding', options: [['utf-8', 'UTF-8'], ['utf-16', 'UTF-16 (with BOM)'], ['windows-1252', 'Windows-1252'], ['latin1', 'Latin-1']] },
  { key: 'dateFormat', label: 'Dates', options: ['YYYY-MM-DD', 'DD/MM/YYYY', 'MM/DD/YYYY', 'DD.MM.YYYY', 'DD-MM-YYYY', 'YYYY/MM/DD', 'YYYY.MM.DD'].map((f) => [f, f]) },
  { key: 'decimalSeparator', label: 'Decimal separator', options: [['.', '. (point)'], [',', ', (comma)']] },
  { key: 'quotes', label: 'Quotes', options: [['strict', 'strict (RFC 4180)'], ['relaxed', 'relaxed (a quote inside a field is a literal)']] },
];

const list = (text) => text.split(',').map((v) => v.trim()).filter(Boolean);

/**
 * The columns table. `columns()` returns the definition's `columns` and `key()` its key (the checked
 * rows, in column order; undefined when none); both throw Error with a message for a row without a name.
 * @param {string} id the table's id (and its inputs' prefix)
 */
export function createColumnsEditor(id) {
  const tbody = el('tbody');
  const add = el('button', { type: 'button', className: 'secondary', text: 'Add column', on: { click: () => addRow().name.focus() } });
  const headers = ['Name', 'Type', 'Required', 'Key', 'Default', 'Max length', 'Pattern', 'Enum values', 'Aliases', ''];
  const root = el('div', { className: 'columns-editor' },
    el('div', { className: 'table-wrap' },
      el('table', { id, className: 'stack editor' },
        el('thead', {}, el('tr', {}, headers.map((h) => el('th', { scope: 'col', text: h })))),
        tbody)),
    el('p', { className: 'muted', text: 'Enum values and aliases: comma-separated. Required: an empty field rejects the row unless a default is given.' }),
    el('div', { className: 'actions' }, add));
  /** @type {Set<ReturnType<typeof addRow>>} */
  const rows = new Set();
  let serial = 0;

  function addRow(column = { name: '', type: 'text' }, hint) {
    const n = ++serial;
    const label = (what) => ({ 'aria-label': `${what} of column ${n}` });
    const numeric = NUMERIC.exec(column.type.trim());
    const r = {
      name: el('input', { type: 'text', value: column.name, dataset: { field: 'name' }, spellcheck: 'false', autocomplete: 'off', title: hint, ...label('Name') }),
      type: el('select', { dataset: { field: 'type' }, ...label('Type') }, TYPES.map((t) => el('option', { value: t, text: t }))),
      precision: el('input', { type: 'number', min: 1, max: 1000, value: numeric?.[1] ?? '', placeholder: 'p', dataset: { field: 'precision' }, ...label('Numeric precision') }),
      scale: el('input', { type: 'number', min: 0, max: 1000, value: numeric?.[2] ?? '', placeholder: 's', dataset: { field: 'scale' }, ...label('Numeric scale') }),
      required: el('input', { type: 'checkbox', checked: Boolean(column.required), dataset: { field: 'required' }, ...label('Required') }),
      key: el('input', { type: 'checkbox', checked: Boolean(column.key), dataset: { field: 'key' }, ...label('Key') }),
      default: el('input', { type: 'text', value: column.default ?? '', dataset: { field: 'default' }, ...label('Default') }),
      maxLength: el('input', { type: 'number', min: 1, value: column.maxLength ?? '', dataset: { field: 'maxLength' }, ...label('Max length') }),
      pattern: el('input', { type: 'text', value: column.pattern ?? '', spellcheck: 'false', dataset: { field: 'pattern' }, ...label('Pattern') }),
      values: el('input', { type: 'text', value: (column.values ?? []).join(', '), dataset: { field: 'values' }, ...label('Enum values') }),
      aliases: el('input', { type: 'text', value: (column.aliases ?? []).join(', '), dataset: { field: 'aliases' }, ...label('Aliases') }),
    };
    r.type.value = numeric ? 'numeric' : TYPES.includes(column.type) ? column.type : 'text';
    const remove = el('button', { type: 'button', className: 'link', text: 'Remove', ...label('Remove') });
    const cell = (label, ...children) => el('td', { 'data-label': label }, children);
    r.row = el('tr', {},
      cell('Name', r.name),
      cell('Type', el('span', { className: 'type-cell' }, r.type, el('span', { className: 'numeric-ps' }, r.precision, r.scale))),
      cell('Required', r.required), cell('Key', r.key), cell('Default', r.default), cell('Max length', r.maxLength),
      cell('Pattern', r.pattern), cell('Enum values', r.values), cell('Aliases', r.aliases), cell('', remove));
    const applyType = () => {
      const type = r.type.value;
      r.row.querySelector('.numeric-ps').hidden = type !== 'numeric';
      for (const [input, on] of [[r.maxLength, type === 'text'], [r.pattern, type === 'text'], [r.values, type === 'enum']]) input.disabled = !on;
    };
    r.type.addEventListener('change', applyType);
    remove.addEventListener('click', () => {
      rows.delete(r);
      r.row.remove();
      add.focus();
    });
    applyType();
    rows.add(r);
    tbody.append(r.row);
    return r;
  }

  function readRow(r, i) {
    const name = r.name.value.trim();
    if (!name) throw new Error(`Column ${i + 1} has no name.`);
    let type = r.type.value;
    if (type === 'numeric' && r.precision.value !== '') type = `numeric(${r.precision.value},${r.scale.value || 0})`;
    const column = { name, type, required: r.required.checked };
    const text = (input) => (input.disabled ? '' : input.value.trim());
    if (text(r.default)) column.default = text(r.default);
    if (text(r.maxLength)) column.maxLength = Number(text(r.maxLength));
    if (text(r.pattern)) column.pattern = text(r.pattern);
    if (!r.values.disabled) column.values = list(r.values.value);
    if (list(r.aliases.value).length > 0) column.aliases = list(r.aliases.value);
    return column;
  }

  return {
    root,
    /**
     * Replaces the rows with `columns` (a definition's), marking those in `key`; `hints` maps a column
     * name to a tooltip (e.g. sample values).
     */
    setColumns(columns, key = [], hints = {}) {
      rows.clear();
      setChildren(tbody);
      for (const c of columns) addRow({ ...c, key: key.includes(c.name) }, hints[c.name]);
      if (columns.length === 0) addRow();
    },
    columns: () => [...rows].map(readRow),
    key() {
      const key = [...rows].filter((r) => r.key.checked).map((r) => r.name.value.trim());
      return key.length > 0 ? key : undefined;
    },
  };
}

/** The input format selects; `format()` is the definition's `format` (every key; the server drops defaults). */
export function createFormatFields(idPrefix) {
  const selects = new Map(FORMAT_FIELDS.map((f) => [f.key, el('select', { id: `${idPrefix}-${f.key}` }, f.options.map(([value, text]) => el('option', { value, text })))]));
  const root = el('fieldset', { className: 'format-fields' },
    el('legend', { text: 'Input format (defaults: RFC 4180, UTF-8, ISO dates)' }),
    el('div', { className: 'fields' },
      FORMAT_FIELDS.map((f) => el('div', { className: 'field' }, el('label', { for: `${idPrefix}-${f.key}`, text: f.label }), selects.get(f.key)))));
  return {
    root,
    /** Shows `format` (a definition's, or an inference's dialect); keys it lacks show their default. */
    setFormat(format = {}) {
      for (const f of FORMAT_FIELDS) {
        const select = selects.get(f.key);
        select.value = format[f.key] ?? f.options[0][0];
        if (select.selectedIndex < 0) select.value = f.options[0][0];
      }
    },
    format: () => Object.fromEntries(FORMAT_FIELDS.map((f) => [f.key, selects.get(f.key).value])),
  };
}

/** A format as one line of text ("defaults" when every key is RFC 4180's). */
export function describeFormat(format = {}) {
  const parts = FORMAT_FIELDS.filter((f) => format[f.key] !== undefined && format[f.key] !== f.options[0][0]).map((f) => {
    const option = f.options.find(([value]) => value === format[f.key]);
    return `${f.label.toLowerCase()} ${option ? option[1] : format[f.key]}`;
  });
  return parts.length > 0 ? parts.join(' · ') : 'defaults (comma, UTF-8, YYYY-MM-DD, decimal point, strict quotes)';
}
