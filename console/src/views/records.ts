// Browsing one collection: filters, ordering (newest first by default), paging, a record drawer
// (details, edit, delete, actions), a row menu, and live updates through a realtime
// subscription. Rows are updated in place, so a control under the pointer stays the same
// element while live data changes around it.
import { h, clear, cell, timeEl, setTime, setText, shortId, NONE } from '../dom';
import { state, attempt, showError, hideError, may, refusal, ownerEl, usernameOf, loadUsernames, toast } from '../app';
import type { ActionDef, CollectionDef, FieldDef } from '../schema';
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
/** Newest first unless the user orders otherwise: a new record lands on the first page. */
export const DEFAULT_ORDERING = '-created';

interface RowParts {
  tr: HTMLTableRowElement;
  cells: Map<string, HTMLTableCellElement>;
  /** The last values rendered into each cell (JSON), to touch only what changed. */
  shown: Map<string, string>;
}

export function recordsView(coll: CollectionDef, params: URLSearchParams): { el: HTMLElement; dispose: () => void } {
  const api = state.lb.collection(coll.name);
  let filterText = params.get('filter') ?? '';
  let ordering = params.get('ordering') ?? DEFAULT_ORDERING;
  let limit = Number(params.get('limit') ?? 25) || 25;
  let offset = Number(params.get('offset') ?? 0) || 0;
  let count = 0;
  let items: Rec[] = [];
  let failed = false; // the last list was refused: the table shows no stale rows
  let disposed = false;
  let loadGen = 0;
  let sub: { close(): void | Promise<void> } | null = null;
  const flashes = new Map<string, { cls: string; timer: number }>(); // id -> highlight class

  const filterInput = h('input', {
    type: 'text',
    'data-testid': 'filter-input',
    placeholder: 'brand=Ford&model__gte=2014',
    value: filterText,
    class: 'grow',
  });
  const orderingInput = h('input', { type: 'text', 'data-testid': 'ordering-input', placeholder: DEFAULT_ORDERING, value: ordering, class: 'ordering' });
  const limitInput = h('input', { type: 'number', min: '1', max: '500', 'data-testid': 'limit-input', value: String(limit), class: 'narrow' });
  const pageInfo = h('span', { 'data-testid': 'page-info', class: 'muted', 'aria-live': 'polite' });
  const liveBadge = h('span', { class: 'badge', 'data-testid': 'live-status' }, 'connecting…');
  const prevBtn = h('button', { 'data-testid': 'page-prev', onclick: () => go(Math.max(0, offset - limit)) }, '‹ Prev');
  const nextBtn = h('button', { 'data-testid': 'page-next', onclick: () => go(offset + limit) }, 'Next ›');
  const thead = h('thead');
  const tbody = h('tbody');
  const table = h('table', { class: 'records', 'data-testid': 'records-table', 'data-collection': coll.name }, thead, tbody);
  const resultHost = h('div', { class: 'form-host' });
  const drawer = h('aside', { class: 'drawer', 'data-testid': 'record-drawer', role: 'dialog', 'aria-modal': 'false', 'aria-labelledby': 'drawer-title', hidden: true });
  const menu = h('div', { class: 'menu', role: 'menu', 'data-testid': 'row-menu', hidden: true });
  const rows = new Map<string, RowParts>();
  let columnsShown = '';

  const fieldDefs = new Map<string, FieldDef>((coll.fields ?? []).map((f) => [f.name, f]));
  const detailActions = coll.actions.filter((a) => a.detail);
  const rules = coll.rules ?? {};

  /** The table's columns: the row menu, a short id, the declared fields (not the write-only
   * ones, whose values never come back), updated and owner. */
  const columns = (): string[] => {
    const declared = coll.fields?.filter((f) => !f.writeOnly).map((f) => f.name) ?? [];
    const seen = new Set(['id', ...declared]);
    const extra: string[] = [];
    for (const r of items) for (const k of Object.keys(r)) if (!seen.has(k) && !SERVER_COLS.includes(k)) { seen.add(k); extra.push(k); }
    const cols = ['id', ...declared, ...extra, 'updated'];
    if (items.some((r) => 'owner' in r)) cols.push('owner');
    return cols;
  };

  function syncUrl(): void {
    const q = new URLSearchParams();
    if (filterText) q.set('filter', filterText);
    if (ordering !== DEFAULT_ORDERING) q.set('ordering', ordering);
    if (limit !== 25) q.set('limit', String(limit));
    if (offset) q.set('offset', String(offset));
    const s = q.toString();
    history.replaceState(null, '', `#/c/${coll.name}${s ? '?' + s : ''}`);
  }

  /** A refused list leaves no stale rows behind: the table says why it is empty. */
  function refuse(e: unknown): void {
    showError(e);
    failed = true;
    items = [];
    count = 0;
    render();
  }

  async function load(): Promise<void> {
    let filter: Record<string, string>;
    try {
      filter = parseFilter(filterText);
    } catch (e) {
      refuse(e);
      return;
    }
    const gen = ++loadGen;
    let page;
    try {
      page = await api.list({ filter, ordering: ordering || undefined, limit, offset });
    } catch (e) {
      if (!disposed && gen === loadGen) refuse(e);
      return;
    }
    // Only the newest request's answer counts (an older one may arrive last).
    if (disposed || gen !== loadGen) return;
    if (failed) hideError();
    failed = false;
    count = page.count;
    items = (page.items ?? page.results) as Rec[];
    render();
    syncUrl();
    if (items.some((r) => typeof r.owner === 'string')) loadUsernames(() => { if (!disposed) render(true); });
  }

  function go(newOffset: number): void {
    offset = newOffset;
    void load();
  }

  function apply(): void {
    filterText = filterInput.value.trim();
    ordering = orderingInput.value.trim() || DEFAULT_ORDERING;
    orderingInput.value = ordering;
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

  function renderHead(cols: string[]): void {
    const key = cols.join(',') + '|' + ordering;
    if (key === columnsShown) return;
    columnsShown = key;
    clear(
      thead,
      h(
        'tr',
        null,
        h('th', { class: 'actions-col', scope: 'col' }, h('span', { class: 'sr-only' }, 'Actions')),
        cols.map((c) => {
          const sort = ordering === c ? 'ascending' : ordering === '-' + c ? 'descending' : 'none';
          const sortable = c !== 'owner';
          return h(
            'th',
            { scope: 'col', 'aria-sort': sortable ? sort : undefined, 'data-col': c, class: `col-${c}` },
            sortable
              ? h('button', { class: 'sort', 'data-testid': `sort-${c}`, title: `Sort by ${c}`, onclick: () => sortBy(c) },
                  c, h('span', { 'aria-hidden': 'true' }, sort === 'ascending' ? ' ▲' : sort === 'descending' ? ' ▼' : ''))
              : c,
          );
        }),
      ),
    );
  }

  function cellContent(col: string, r: Rec): Node | string {
    if (col === 'id') return h('span', { class: 'mono', title: r.id }, shortId(r.id));
    if (col === 'updated' || col === 'created') return timeEl(r[col]);
    if (col === 'owner') return ownerEl(r.owner);
    const v = r[col];
    if (v === null || v === undefined) return h('span', { class: 'muted none', title: 'null' }, NONE);
    return cell(v);
  }

  function newRow(r: Rec): RowParts {
    const menuBtn = h('button', {
      class: 'small icon',
      'data-testid': 'row-menu-button',
      'aria-haspopup': 'menu',
      'aria-expanded': 'false',
      'aria-label': `Actions for ${coll.name} ${r.id}`,
      title: 'Actions',
      onclick: (e: Event) => {
        e.stopPropagation();
        openMenu(r.id, menuBtn);
      },
    }, '⋯');
    const tr = h('tr', { 'data-testid': 'record-row', 'data-id': r.id, tabindex: '-1' }, h('td', { class: 'actions-col' }, menuBtn));
    tr.addEventListener('click', (e) => {
      if ((e.target as HTMLElement).closest('button, a, input, select, textarea')) return;
      openDrawer(r.id);
    });
    return { tr, cells: new Map(), shown: new Map() };
  }

  /** Renders the rows in place: same <tr> per id, cells rewritten only when their value changed. */
  function render(force = false): void {
    const cols = columns();
    renderHead(cols);
    const colsKey = cols.join(',');
    const live = new Set(items.map((r) => r.id));
    for (const [id, parts] of rows) if (!live.has(id)) { parts.tr.remove(); rows.delete(id); }
    const empty = tbody.querySelector('[data-testid="records-empty-row"]');
    if (items.length) empty?.remove();
    items.forEach((r, i) => {
      let parts = rows.get(r.id);
      if (!parts) { parts = newRow(r); rows.set(r.id, parts); }
      if (parts.tr.dataset.cols !== colsKey) {
        // The columns changed: rebuild this row's cells (the menu cell stays).
        for (const c of parts.cells.values()) c.remove();
        parts.cells.clear();
        parts.shown.clear();
        for (const c of cols) {
          const td = h('td', { 'data-field': c, class: `col-${c}` });
          parts.cells.set(c, td);
          parts.tr.append(td);
        }
        parts.tr.dataset.cols = colsKey;
      }
      for (const c of cols) {
        const td = parts.cells.get(c)!;
        const val = c === 'owner' ? `${r.owner}|${usernameKey(r.owner)}` : JSON.stringify(r[c] ?? null);
        if (!force && parts.shown.get(c) === val) continue;
        if ((c === 'updated' || c === 'created') && td.firstElementChild?.tagName === 'TIME') setTime(td.firstElementChild as HTMLElement, r[c]);
        else clear(td, cellContent(c, r));
        if (c !== 'id' && c !== 'owner' && c !== 'updated') td.title = r[c] === null || r[c] === undefined ? 'null' : cell(r[c]);
        parts.shown.set(c, val);
      }
      const flash = flashes.get(r.id)?.cls ?? '';
      if (parts.tr.dataset.flash !== flash) {
        parts.tr.classList.remove('flash-create', 'flash-update', 'highlight');
        if (flash) parts.tr.classList.add(flash);
        parts.tr.dataset.flash = flash;
      }
      // Move only rows out of place (a moved row under the pointer would lose the press).
      if (tbody.children[i] !== parts.tr) tbody.insertBefore(parts.tr, tbody.children[i] ?? null);
    });
    if (!items.length && !tbody.querySelector('[data-testid="records-empty-row"]')) {
      tbody.append(h('tr', { 'data-testid': 'records-empty-row' },
        h('td', { colspan: String(cols.length + 1), class: 'muted', 'data-testid': 'records-empty' },
          failed ? 'No records shown: the server refused the query (see the message above).' : 'No records.')));
    } else if (!items.length) {
      setText(tbody.querySelector('[data-testid="records-empty"]')!,
        failed ? 'No records shown: the server refused the query (see the message above).' : 'No records.');
    }
    const from = count === 0 ? 0 : offset + 1;
    const to = Math.min(offset + items.length, count);
    setText(pageInfo, `${from}–${to} of ${count}`);
    pageInfo.dataset.count = String(count);
    prevBtn.disabled = offset === 0;
    nextBtn.disabled = offset + limit >= count;
    if (!drawer.hidden && drawerId) renderDrawer();
  }

  function usernameKey(owner: unknown): string {
    return typeof owner === 'string' ? (usernameOf(owner) ?? '') : '';
  }

  function flash(id: string, cls: string, ms: number): void {
    const old = flashes.get(id);
    if (old) clearTimeout(old.timer);
    const timer = window.setTimeout(() => {
      flashes.delete(id);
      if (!disposed) render();
    }, ms);
    flashes.set(id, { cls, timer });
  }

  // ---- the row menu -----------------------------------------------------------------------

  let menuFor: { id: string; button: HTMLElement } | null = null;

  function closeMenu(focusButton = false): void {
    if (!menuFor) return;
    menu.hidden = true;
    menuFor.button.setAttribute('aria-expanded', 'false');
    if (focusButton) menuFor.button.focus();
    menuFor = null;
  }

  function menuItem(label: string, testid: string, allowed: boolean, why: string, run: () => void, danger = false): HTMLElement {
    return h('button', {
      role: 'menuitem',
      class: danger ? 'danger' : '',
      'data-testid': testid,
      disabled: !allowed,
      title: allowed ? undefined : why,
      onclick: () => { closeMenu(); run(); },
    }, label, allowed ? null : h('span', { class: 'sr-only' }, ` (${why})`));
  }

  function openMenu(id: string, button: HTMLElement): void {
    if (menuFor?.id === id) { closeMenu(); return; }
    closeMenu();
    const r = items.find((x) => x.id === id);
    if (!r) return;
    clear(
      menu,
      menuItem('Open', 'menu-open', true, '', () => openDrawer(id)),
      menuItem('Edit', 'menu-edit', may(rules.update, r), refusal(rules.update), () => edit(current(id))),
      detailActions.map((a) => menuItem(a.name, `menu-action-${a.name}`, may(a.rule, r), refusal(a.rule), () => void runAction(a, current(id)))),
      menuItem('Delete', 'menu-delete', may(rules.delete, r), refusal(rules.delete), () => void remove(current(id)), true),
    );
    const box = button.getBoundingClientRect();
    const host = el.getBoundingClientRect();
    menu.style.top = `${box.bottom - host.top + 2}px`;
    menu.style.left = `${box.left - host.left}px`;
    menu.hidden = false;
    button.setAttribute('aria-expanded', 'true');
    menuFor = { id, button };
    (menu.querySelector('button:not(:disabled)') as HTMLElement | null)?.focus();
  }

  menu.addEventListener('keydown', (e) => {
    const buttons = [...menu.querySelectorAll<HTMLButtonElement>('button:not(:disabled)')];
    const at = buttons.indexOf(document.activeElement as HTMLButtonElement);
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault();
      const next = buttons[(at + (e.key === 'ArrowDown' ? 1 : buttons.length - 1)) % buttons.length];
      next?.focus();
    } else if (e.key === 'Escape') {
      e.preventDefault();
      e.stopPropagation();
      closeMenu(true);
    } else if (e.key === 'Tab') {
      closeMenu();
    }
  });
  const onDocClick = (e: MouseEvent) => {
    if (menuFor && !menu.contains(e.target as Node) && e.target !== menuFor.button) closeMenu();
  };
  document.addEventListener('click', onDocClick);

  /** The record as the page has it now (the menu may outlive a re-render). */
  function current(id: string): Rec {
    return items.find((x) => x.id === id) ?? drawerRecord ?? ({ id } as Rec);
  }

  // ---- the drawer -------------------------------------------------------------------------

  let drawerId: string | null = null;
  let drawerRecord: Rec | null = null;
  let drawerMode: 'view' | 'form' = 'view';
  let returnFocus: HTMLElement | null = null;

  function openDrawer(id: string): void {
    returnFocus = document.activeElement as HTMLElement | null;
    drawerId = id;
    drawerMode = 'view';
    drawerRecord = items.find((x) => x.id === id) ?? null;
    drawer.hidden = false;
    renderDrawer();
    if (!drawerRecord) {
      void attempt(() => api.get(id)).then((r) => {
        if (r && drawerId === id) {
          drawerRecord = r as Rec;
          renderDrawer();
        }
      });
    }
    (drawer.querySelector('[data-testid="drawer-close"]') as HTMLElement | null)?.focus();
  }

  function closeDrawer(): void {
    if (drawer.hidden) return;
    drawer.hidden = true;
    drawerId = null;
    drawerRecord = null;
    delete drawer.dataset.showing;
    clear(drawer);
    returnFocus?.focus?.();
    returnFocus = null;
  }

  function drawerHead(title: string): HTMLElement {
    return h('div', { class: 'drawer-head' },
      h('h3', { id: 'drawer-title' }, title),
      h('button', { class: 'small', 'data-testid': 'drawer-close', 'aria-label': 'Close (Escape)', title: 'Close (Escape)', onclick: closeDrawer }, '×'));
  }

  /**
   * Shows the drawer's record. Live changes rewrite only the field list: the buttons stay the
   * same elements (a press in progress lands).
   */
  function renderDrawer(): void {
    if (drawerMode === 'form' || !drawerId) return;
    const fresh = items.find((x) => x.id === drawerId);
    if (fresh) drawerRecord = fresh;
    const r = drawerRecord;
    if (!r) {
      if (drawer.dataset.showing !== `loading:${drawerId}`) {
        clear(drawer, drawerHead(`${coll.name} ${shortId(drawerId)}`), h('p', { class: 'muted' }, 'Loading…'));
        drawer.dataset.showing = `loading:${drawerId}`;
      }
      return;
    }
    const fieldList = drawer.querySelector('[data-testid="drawer-fields"]');
    if (drawer.dataset.showing === `view:${r.id}` && fieldList) {
      const key = JSON.stringify(r) + (usernameOf(String(r.owner ?? '')) ?? '');
      if (drawer.dataset.key !== key) {
        drawer.dataset.key = key;
        fieldList.replaceWith(fieldsOf(r));
      }
      return;
    }
    drawer.dataset.showing = `view:${r.id}`;
    drawer.dataset.key = JSON.stringify(r) + (usernameOf(String(r.owner ?? '')) ?? '');
    const canEdit = may(rules.update, r);
    const canDelete = may(rules.delete, r);
    clear(
      drawer,
      drawerHead(`${coll.name} ${shortId(r.id)}`),
      fieldsOf(r),
      h('div', { class: 'drawer-actions' },
        h('button', { class: 'primary', 'data-testid': 'record-edit', disabled: !canEdit, title: canEdit ? 'Edit' : refusal(rules.update), onclick: () => edit(current(r.id)) }, 'Edit'),
        detailActions.map((a) => {
          const ok = may(a.rule, r);
          return h('button', { 'data-testid': `row-action-${a.name}`, disabled: !ok, title: ok ? (a.task ? `${a.name} (starts a task)` : a.name) : refusal(a.rule), onclick: () => void runAction(a, current(r.id)) }, a.name);
        }),
        h('button', { class: 'danger', 'data-testid': 'record-delete', disabled: !canDelete, title: canDelete ? 'Delete' : refusal(rules.delete), onclick: () => void remove(current(r.id)) }, 'Delete'),
      ),
      !canEdit || !canDelete ? h('p', { class: 'muted small-text', 'data-testid': 'drawer-refusal' }, refusal(rules.update) || refusal(rules.delete)) : null,
    );
  }

  function fieldsOf(r: Rec): HTMLElement {
    const fields = ['id', ...(coll.fields?.filter((f) => !f.writeOnly).map((f) => f.name) ?? Object.keys(r).filter((k) => !SERVER_COLS.includes(k))), 'version', 'created', 'updated', 'owner'];
    const value = (k: string): Node | string =>
      k === 'created' || k === 'updated' ? h('span', null, timeEl(r[k]), h('span', { class: 'muted small-text' }, ` ${r[k] ?? ''}`))
        : k === 'owner' ? ownerEl(r.owner)
          : k === 'id' ? h('span', { class: 'mono' }, r.id)
            : r[k] === null || r[k] === undefined ? h('span', { class: 'muted' }, NONE) : cell(r[k]);
    return h('dl', { class: 'record-fields', 'data-testid': 'drawer-fields' },
      fields.filter((k) => k in r || fieldDefs.has(k)).map((k) => [h('dt', null, k), h('dd', { 'data-field': k }, value(k))]));
  }

  function edit(r: Rec | null): void {
    returnFocus ??= document.activeElement as HTMLElement | null;
    drawerMode = 'form';
    drawerId = r?.id ?? null;
    drawerRecord = r;
    drawer.hidden = false;
    delete drawer.dataset.showing;
    const host = h('div');
    clear(drawer, drawerHead(r ? `Edit ${coll.name} ${shortId(r.id)}` : `New ${coll.name} record`), host);
    openRecordForm(host, coll, r, async (data, isNew) => {
      // Edits are guarded by the version the form was opened with (If-Match): a concurrent
      // change answers 412 instead of being overwritten.
      // Generated forms send the changed fields as a merge patch; the JSON textarea replaces.
      const guard = typeof r?.version === 'number' ? { ifMatch: r.version } : undefined;
      const saved = (isNew
        ? await api.create(data)
        : coll.fields
          ? await api.patch(r!.id, data, guard)
          : await api.update(r!.id, data, guard)) as Rec;
      afterSave(saved, isNew);
      return saved;
    }, () => {
      // Cancel: back to the record, or closed for a new one.
      if (r) {
        drawerMode = 'view';
        delete drawer.dataset.showing;
        renderDrawer();
      } else closeDrawer();
    });
  }

  function afterSave(saved: Rec, isNew: boolean): void {
    drawerMode = 'view';
    closeDrawer();
    if (!saved || typeof saved !== 'object' || !saved.id) {
      void load();
      return;
    }
    flash(saved.id, 'highlight', 4000);
    if (isNew && offset !== 0 && ordering === DEFAULT_ORDERING) offset = 0; // where it landed
    toast(`${isNew ? 'Created' : 'Saved'} ${coll.name} ${shortId(saved.id)}`, { label: 'Open', run: () => openDrawer(saved.id) });
    void load().then(() => {
      rows.get(saved.id)?.tr.scrollIntoView({ block: 'nearest' });
    });
  }

  async function remove(r: Rec): Promise<void> {
    if (!confirm(`Delete ${coll.name} ${r.id}?`)) return;
    const ok = await attempt(async () => {
      await api.delete(r.id);
      return true;
    });
    if (!ok) return;
    if (drawerId === r.id) closeDrawer();
    toast(`Deleted ${coll.name} ${shortId(r.id)}`);
    void load();
  }

  async function runAction(a: ActionDef, r: Rec): Promise<void> {
    let input: unknown = {};
    if (!a.task) {
      // A plain action usually takes input (e.g. repaint's {"color": "Red"}): ask for it.
      const text = prompt(`Input of ${coll.name}/${r.id}:${a.name} (JSON)`, '{}');
      if (text === null) return;
      try {
        input = text.trim() ? JSON.parse(text) : {};
      } catch {
        showError(new Error('The action input is not valid JSON.'));
        return;
      }
    }
    const res = await attempt(() => api.action(a.name, { id: r.id, input }));
    if (res && typeof res === 'object' && 'kind' in (res as object) && 'state' in (res as object)) {
      // A task: follow it on the tasks page.
      toast(`Started ${a.name}: task ${shortId((res as { id: string }).id)}`);
      navigate(`#/tasks?highlight=${encodeURIComponent((res as { id: string }).id)}`);
    } else if (res !== undefined) {
      showResult(`${a.name} → result`, res);
    }
  }

  function showResult(title: string, res: unknown): void {
    clear(resultHost,
      h('div', { class: 'card', 'data-testid': 'action-result-card' }, h('h3', null, title), h('pre', { 'data-testid': 'action-result', tabindex: '0' }, JSON.stringify(res, null, 2)),
        h('button', { onclick: () => clear(resultHost) }, 'Close')));
  }

  // Escape closes the menu, then the drawer (and its form), then a result card.
  const onKey = (e: KeyboardEvent) => {
    if (e.key !== 'Escape' || e.defaultPrevented) return;
    if (menuFor) closeMenu(true);
    else if (!drawer.hidden) closeDrawer();
    else if (resultHost.firstChild) clear(resultHost);
    else return;
    e.preventDefault();
  };
  document.addEventListener('keydown', onKey);

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
        if (pk && (ev.action === 'create' || ev.action === 'update') && flashes.get(pk)?.cls !== 'highlight') flash(pk, `flash-${ev.action}`, 1500);
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
  const canCreate = may(rules.create);
  const el = h(
    'section',
    { class: 'view records-view', 'data-testid': `collection-view-${coll.name}` },
    h('div', { class: 'view-head' }, h('h2', null, coll.name), liveBadge,
      h('button', { class: 'primary', 'data-testid': 'record-new', disabled: !canCreate, title: canCreate ? `New ${coll.name} record` : refusal(rules.create), onclick: () => { returnFocus = null; edit(null); } }, '+ New'),
      coll.actions.filter((a) => !a.detail).map((a) => {
        const ok = may(a.rule);
        return h('button', { 'data-testid': `list-action-${a.name}`, disabled: !ok, title: ok ? a.name : refusal(a.rule), onclick: async () => {
          const res = await attempt(() => api.action(a.name, { input: {} }));
          if (res !== undefined) showResult(`${a.name} → result`, res);
        } }, a.name);
      }),
    ),
    h(
      'div',
      { class: 'toolbar' },
      h('label', { class: 'grow' }, 'Filter ', filterInput),
      h('label', null, 'Ordering ', orderingInput),
      h('label', null, 'Limit ', limitInput),
      h('button', { 'data-testid': 'filter-apply', onclick: apply }, 'Apply'),
    ),
    h('p', { class: 'hint muted' }, `field=value or field__lookup=value joined by &; lookups: exact iexact contains icontains startswith istartswith endswith gt gte lt lte in isnull ne. Fields: ${fieldHelp}. Click a row to open it.`),
    resultHost,
    h('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': `${coll.name} records` }, table),
    h('div', { class: 'pager' }, prevBtn, pageInfo, nextBtn),
    menu,
    drawer,
  );
  void load();
  return {
    el,
    dispose: () => {
      disposed = true;
      if (reloadTimer !== undefined) clearTimeout(reloadTimer);
      for (const f of flashes.values()) clearTimeout(f.timer);
      document.removeEventListener('keydown', onKey);
      document.removeEventListener('click', onDocClick);
      if (sub) void sub.close();
    },
  };
}
