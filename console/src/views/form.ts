// Create/edit form generated from a collection's declared fields; a JSON textarea when the
// fields are unknown (no schema) or for `json` fields.
import { h, clear } from '../dom';
import { describeError } from '../app';
import type { CollectionDef, FieldDef } from '../schema';

type Rec = Record<string, any>;

function inputFor(f: FieldDef, value: unknown): HTMLElement {
  const common = { name: f.name, 'data-testid': `field-${f.name}`, id: `field-${f.name}` };
  if (f.choices && f.choices.length) {
    return h(
      'select',
      common,
      h('option', { value: '' }, f.required ? '— choose —' : '(none)'),
      f.choices.map((c) => h('option', { value: JSON.stringify(c), selected: JSON.stringify(c) === JSON.stringify(value) ? true : undefined }, String(c))),
    );
  }
  switch (f.type) {
    case 'boolean':
      return h('input', { ...common, type: 'checkbox', checked: value === true });
    case 'integer':
    case 'number':
      return h('input', {
        ...common,
        type: 'number',
        step: f.type === 'integer' ? '1' : 'any',
        min: f.min,
        max: f.max,
        value: value === null || value === undefined ? '' : String(value),
      });
    case 'text':
      return h('textarea', { ...common, rows: '3', value: value === null || value === undefined ? '' : String(value) });
    case 'json':
      return h('textarea', { ...common, rows: '3', class: 'mono', placeholder: 'JSON', value: value === undefined ? '' : JSON.stringify(value) });
    case 'datetime':
      return h('input', { ...common, type: 'text', placeholder: '2026-11-24T06:37:21.123Z', value: value ? String(value) : '' });
    default:
      return h('input', {
        ...common,
        type: f.writeOnly ? 'password' : 'text',
        maxlength: f.maxLength,
        value: value === null || value === undefined ? '' : String(value),
      });
  }
}

function readInput(f: FieldDef, el: HTMLElement): { set: boolean; value?: unknown } {
  if (f.choices && f.choices.length) {
    const v = (el as HTMLSelectElement).value;
    return v === '' ? { set: true, value: null } : { set: true, value: JSON.parse(v) };
  }
  if (f.type === 'boolean') return { set: true, value: (el as HTMLInputElement).checked };
  const raw = (el as HTMLInputElement).value;
  if (raw.trim() === '') return { set: true, value: f.type === 'string' || f.type === 'text' ? (f.required ? '' : null) : null };
  switch (f.type) {
    case 'integer':
    case 'number': {
      const n = Number(raw);
      return { set: true, value: Number.isFinite(n) ? n : raw };
    }
    case 'json':
      try {
        return { set: true, value: JSON.parse(raw) };
      } catch {
        throw new Error(`${f.name}: not valid JSON`);
      }
    default:
      return { set: true, value: raw };
  }
}

/**
 * Opens the form in `host`. `save(data, isNew)` performs the request (and closes the form when
 * it succeeds); errors (problem+json) are shown in the form, field errors next to their field.
 * `cancel` runs on Cancel and on Escape.
 */
export function openRecordForm(
  host: HTMLElement,
  coll: CollectionDef,
  record: Rec | null,
  save: (data: Rec, isNew: boolean) => Promise<unknown>,
  cancel: () => void,
): void {
  const isNew = record === null;
  const errBox = h('div', { class: 'form-error', 'data-testid': 'form-error', hidden: true });
  const fieldErrs = new Map<string, HTMLElement>();
  let body: HTMLElement;
  let collect: () => Rec;

  if (coll.fields && coll.fields.length) {
    const inputs = new Map<string, HTMLElement>();
    body = h(
      'div',
      { class: 'fields' },
      coll.fields.map((f) => {
        const input = inputFor(f, record ? record[f.name] : undefined);
        inputs.set(f.name, input);
        const err = h('div', { class: 'field-error', 'data-testid': `field-error-${f.name}` });
        fieldErrs.set(f.name, err);
        return h(
          'div',
          { class: 'field' },
          h('label', { for: `field-${f.name}` }, f.name, f.required ? h('span', { class: 'req' }, ' *') : null, h('span', { class: 'muted type' }, ` ${f.type}`)),
          input,
          err,
        );
      }),
    );
    collect = () => {
      const data: Rec = {};
      for (const f of coll.fields!) {
        const r = readInput(f, inputs.get(f.name)!);
        // On create, leave empty fields out: defaults apply, and the server says which are required.
        if (isNew && (r.value === null || r.value === '') && f.type !== 'boolean') continue;
        if (!isNew) {
          // Edits send only what changed (a JSON merge patch); an emptied text field that was ''
          // stays ''.
          const before = record![f.name] ?? null;
          if (r.value === null && before === '') continue;
          if (JSON.stringify(r.value) === JSON.stringify(before)) continue;
        }
        if (r.set) data[f.name] = r.value;
      }
      return data;
    };
  } else {
    const editable: Rec = {};
    if (record) for (const [k, v] of Object.entries(record)) if (!['id', 'created', 'updated', 'version', 'owner'].includes(k)) editable[k] = v;
    const ta = h('textarea', { class: 'mono', rows: '8', 'data-testid': 'record-json', value: JSON.stringify(editable, null, 2) });
    body = h('div', { class: 'json-body' }, h('label', null, 'Record (JSON object; the server has no schema endpoint, so fields are not known here)'), ta);
    collect = () => {
      const v = JSON.parse(ta.value || '{}');
      if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('The record must be a JSON object.');
      return v;
    };
  }

  const saveBtn = h('button', { type: 'submit', class: 'primary', 'data-testid': 'record-save' }, isNew ? 'Create' : 'Save');
  const form = h(
    'form',
    { class: 'card record-form', 'data-testid': 'record-form' },
    record ? h('p', { class: 'muted small-text' }, `${record.id}, version ${record.version ?? '?'}`) : null,
    body,
    errBox,
    h('div', { class: 'actions' }, saveBtn, h('button', { type: 'button', 'data-testid': 'record-cancel', onclick: cancel }, 'Cancel')),
  );
  form.addEventListener('keydown', (ev) => {
    if (ev.key !== 'Escape') return;
    ev.preventDefault();
    ev.stopPropagation();
    cancel();
  });
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    errBox.hidden = true;
    for (const e of fieldErrs.values()) e.textContent = '';
    let data: Rec;
    try {
      data = collect();
    } catch (e) {
      clear(errBox, describeError(e));
      errBox.hidden = false;
      return;
    }
    saveBtn.disabled = true;
    try {
      await save(data, isNew);
    } catch (e) {
      clear(errBox, describeError(e));
      errBox.hidden = false;
      const fe = (e as { errors?: Record<string, string[]> }).errors;
      if (fe) for (const [k, msgs] of Object.entries(fe)) { const el = fieldErrs.get(k); if (el) el.textContent = msgs.join(' '); }
    } finally {
      saveBtn.disabled = false;
    }
  });
  clear(host, form);
  (form.querySelector('input,select,textarea') as HTMLElement | null)?.focus();
}
