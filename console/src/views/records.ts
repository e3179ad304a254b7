// Browsing one collection: filters, ordering, paging, create/edit/delete, row actions, and
// live updates through a realtime subscription.
import { h, clear, cell } from '../dom';
import { state, attempt, showError, hideError } from '../app';
import type { CollectionDef, FieldDef } from '../schema';
import { openRecordForm } from './form';
import { navigate } from '../router';

type Rec = Record<string, any> & { id: string };

/** Parses `brand=Ford&model__gte=2014` (also separated by commas, spaces or newlines). */
export function parseFilter(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of text.split(/[&\n]|\s+(?=[A-Za-z_][A-Za-z0-9_]*(?:__[a-z]+)?=)/)) {
    const t = part.trim();
    if (!t) continue;
    const i = t.indexOf('=');
    if (i <= 0) throw new Error(`Filter "${t}" is not field=value (e.g. brand=Ford, model__gte=2014).`);
    out[t.slice(0, i).trim()] = t.slice(i + 1).trim();
  }
  return out;
}

const SERVER_COLS = ['id', 'created', 'updated', 'version', 'owner'];

export function recordsView(coll: CollectionDef, params: URLSearchParams): { el: HTMLElement; dispose: () => void } {
  const api = state.lb.collection(coll.name);
  let filterText = params.get('filter') ?? '';
  let ordering = params.get('ordering') ?? '';
  let limit = Number(params.get('limit') ?? 25) || 25;
  let offset = Number(params.get('offset') ?? 0) || 0;
  let count = 0;
  let items: Rec[] = [];
  let disposed = false;
  let loadGen = 0;
  let sub: { close(): void | Promise<void> } | null = null;
  const recentlyChanged = new Map<string, string>(); // id -> action, for a brief highlight

  const filterInput = h('input', {
    type: 'text',
    'data-testid': 'filter-input',
    placeholder: 'brand=Ford&model__gte=2014',
    value: filterText,
    class: 'grow',
  });
  const orderingInput = h('input', { type: 'text', 'data-testid': 'ordering-input', placeholder: '-model,brand', value: ordering });
  const limitInput = h('input', { type: 'number', min: '1', max: '500', 'data-testid': 'limit-input', value: String(limit), class: 'narrow' });
  const pageInfo = h('span', { 'data-testid': 'page-info', class: 'muted' });
  const liveBadge = h('span', { class: 'badge', 'data-testid': 'live-status' }, 'connecting…');
  const prevBtn = h('button', { 'data-testid': 'page-prev', onclick: () => go(Math.max(0, offset - limit)) }, '‹ Prev');
  const nextBtn = h('button', { 'data-testid': 'page-next', onclick: () => go(offset + limit) }, 'Next ›');
  const table = h('table', { class: 'records', 'data-testid': 'records-table', 'data-collection': coll.name });
  const formHost = h('div', { class: 'form-host' });

  const columns = (): string[] => {
    const declared = coll.fields?.map((f) => f.name) ?? [];
    const seen = new Set(['id', ...declared]);
    const extra: string[] = [];
    for (const r of items) for (const k of Object.keys(r)) if (!seen.has(k) && !SERVER_COLS.includes(k)) { seen.add(k); extra.push(k); }
    return ['id', ...declared, ...extra, 'version', 'updated', 'owner'];
  };

  function syncUrl(): void {
    const q = new URLSearchParams();
    if (filterText) q.set('filter', filterText);
    if (ordering) q.set('ordering', ordering);
    if (limit !== 25) q.set('limit', String(limit));
    if (offset) q.set('offset', String(offset));
    const s = q.toString();
    history.replaceState(null, '', `#/c/${coll.name}${s ? '?' + s : ''}`);
  }

  async function load(): Promise<void> {
    let filter: Record<string, string>;
    try {
      filter = parseFilter(filterText);
    } catch (e) {
      showError(e);
      return;
    }
    const gen = ++loadGen;
    const page = await attempt(() =>
      api.list({ filter, ordering: ordering || undefined, limit, offset }),
    );
    // Only the newest request's answer counts (an older one may arrive last).
    if (!page || disposed || gen !== loadGen) return;
    hideError();
    count = page.count;
    items = (page.items ?? page.results) as Rec[];
    render();
    syncUrl();
  }

  function go(newOffset: number): void {
    offset = newOffset;
    void load();
  }

  function apply(): void {
    filterText = filterInput.value.trim();
    ordering = orderingInput.value.trim();
    limit = Math.max(1, Math.min(500, Number(limitInput.value) || 25));
    offset = 0;
    void load();
  }

  function sortBy(col: string): void {
    ordering = ordering === col ? '-' + col : col;
    orderingInput.value = ordering;
    offset = 0;
    void load();
  }

  function render(): void {
    const cols = columns();
    const detailActions = coll.actions.filter((a) => a.detail);
    const head = h(
      'tr',
      null,
      h('th', null, ''),
      cols.map((c) =>
        h('th', { onclick: () => sortBy(c), title: 'sort', class: 'sortable' }, c, ordering === c ? ' ▲' : ordering === '-' + c ? ' ▼' : ''),
      ),
    );
    const rows = items.map((r) =>
      h(
        'tr',
        {
          'data-testid': 'record-row',
          'data-id': r.id,
          class: recentlyChanged.has(r.id) ? `flash-${recentlyChanged.get(r.id)}` : '',
        },
        h(
          'td',
          { class: 'row-actions' },
          h('button', { class: 'small', 'data-testid': 'record-edit', onclick: () => edit(r) }, 'Edit'),
          h('button', { class: 'small danger', 'data-testid': 'record-delete', onclick: () => remove(r) }, 'Delete'),
          detailActions.map((a) =>
            h('button', { class: 'small', 'data-testid': `row-action-${a.name}`, onclick: () => runAction(a.name, r) }, a.name),
          ),
        ),
        cols.map((c) => h('td', { 'data-field': c, title: cell(r[c]) }, cell(r[c]))),
      ),
    );
    clear(
      table,
      h('thead', null, head),
      h('tbody', null, rows.length ? rows : h('tr', null, h('td', { colspan: String(cols.length + 1), class: 'muted', 'data-testid': 'records-empty' }, 'No records.'))),
    );
    const from = count === 0 ? 0 : offset + 1;
    const to = Math.min(offset + items.length, count);
    pageInfo.textContent = `${from}–${to} of ${count}`;
    pageInfo.dataset.count = String(count);
    prevBtn.disabled = offset === 0;
    nextBtn.disabled = offset + limit >= count;
  }

  function edit(r: Rec | null): void {
    openRecordForm(formHost, coll, r, async (data, isNew) => {
      // Edits are guarded by the version the form was opened with (If-Match): a concurrent
      // change answers 412 instead of being overwritten.
      // Generated forms send the changed fields as a merge patch; the JSON textarea replaces.
      const guard = typeof r?.version === 'number' ? { ifMatch: r.version } : undefined;
      const saved = isNew
        ? await api.create(data)
        : coll.fields
          ? await api.patch(r!.id, data, guard)
          : await api.update(r!.id, data, guard);
      void load();
      return saved;
    });
  }

  async function remove(r: Rec): Promise<void> {
    if (!confirm(`Delete ${coll.name}/${r.id}?`)) return;
    const ok = await attempt(async () => {
      await api.delete(r.id);
      return true;
    });
    if (ok) void load();
  }

  async function runAction(name: string, r: Rec): Promise<void> {
    let input: unknown = {};
    const def = coll.actions.find((a) => a.name === name && a.detail);
    if (def && !def.task) {
      // A plain action usually takes input (e.g. repaint's {"color": "Red"}): ask for it.
      const text = prompt(`Input of ${coll.name}/${r.id}:${name} (JSON)`, '{}');
      if (text === null) return;
      try {
        input = text.trim() ? JSON.parse(text) : {};
      } catch {
        showError(new Error('The action input is not valid JSON.'));
        return;
      }
    }
    const res = await attempt(() => api.action(name, { id: r.id, input }));
    if (res && typeof res === 'object' && 'kind' in (res as object) && 'state' in (res as object)) {
      // A task: follow it on the tasks page.
      navigate(`#/tasks?highlight=${encodeURIComponent((res as { id: string }).id)}`);
    } else if (res !== undefined) {
      formHost.replaceChildren(
        h('div', { class: 'card' }, h('h3', null, `${name} → result`), h('pre', { 'data-testid': 'action-result' }, JSON.stringify(res, null, 2)),
          h('button', { onclick: () => formHost.replaceChildren() }, 'Close')),
      );
    }
  }

  // Live: every change to the collection refreshes the current page (filters, ordering and
  // paging stay exactly the server's), and flashes the row that changed.
  let reloadTimer: number | undefined;
  function scheduleReload(): void {
    if (reloadTimer !== undefined) return;
    reloadTimer = window.setTimeout(() => {
      reloadTimer = undefined;
      void load();
    }, 50);
  }
  (async () => {
    try {
      const handle = await state.lb.realtime.subscribe(coll.name, (ev: any) => {
        const pk = ev?.pk ?? ev?.data?.id;
        if (pk) {
          recentlyChanged.set(pk, ev.action);
          window.setTimeout(() => recentlyChanged.delete(pk), 1500);
        }
        scheduleReload();
      });
      if (disposed) {
        void handle.close();
        return;
      }
      sub = handle;
      liveBadge.textContent = 'live';
      liveBadge.classList.add('ok');
    } catch (e) {
      liveBadge.textContent = 'not live';
      liveBadge.classList.add('bad');
      liveBadge.title = e instanceof Error ? e.message : String(e);
    }
  })();

  const onEnter = (e: KeyboardEvent) => {
    if (e.key === 'Enter') apply();
  };
  filterInput.addEventListener('keydown', onEnter);
  orderingInput.addEventListener('keydown', onEnter);
  limitInput.addEventListener('keydown', onEnter);

  const fieldHelp = coll.fields
    ? coll.fields.map((f: FieldDef) => f.name).join(', ')
    : 'unknown (no schema)';
  const el = h(
    'section',
    { class: 'view', 'data-testid': `collection-view-${coll.name}` },
    h('div', { class: 'view-head' }, h('h2', null, coll.name), liveBadge,
      h('button', { class: 'primary', 'data-testid': 'record-new', onclick: () => edit(null) }, '+ New'),
      coll.actions.filter((a) => !a.detail).map((a) =>
        h('button', { 'data-testid': `list-action-${a.name}`, onclick: async () => {
          const res = await attempt(() => api.action(a.name, { input: {} }));
          if (res !== undefined) formHost.replaceChildren(h('div', { class: 'card' }, h('h3', null, `${a.name} → result`),
            h('pre', { 'data-testid': 'action-result' }, JSON.stringify(res, null, 2)), h('button', { onclick: () => formHost.replaceChildren() }, 'Close')));
        } }, a.name)),
    ),
    h(
      'div',
      { class: 'toolbar' },
      h('label', { class: 'grow' }, 'Filter ', filterInput),
      h('label', null, 'Ordering ', orderingInput),
      h('label', null, 'Limit ', limitInput),
      h('button', { 'data-testid': 'filter-apply', onclick: apply }, 'Apply'),
    ),
    h('p', { class: 'hint muted' }, `field=value or field__lookup=value joined by &; lookups: exact iexact contains icontains startswith istartswith endswith gt gte lt lte in isnull ne. Fields: ${fieldHelp}.`),
    formHost,
    h('div', { class: 'table-wrap' }, table),
    h('div', { class: 'pager' }, prevBtn, pageInfo, nextBtn),
  );
  void load();
  return {
    el,
    dispose: () => {
      disposed = true;
      if (reloadTimer !== undefined) clearTimeout(reloadTimer);
      if (sub) void sub.close();
    },
  };
}
