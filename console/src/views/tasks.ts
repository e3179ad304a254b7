// Tasks: the caller's tasks with live progress (a realtime subscription to the `tasks` stream),
// cancel buttons, and a form that starts a task through a collection action.
import { h, clear, fmtTime } from '../dom';
import { state, attempt, hideError } from '../app';

type Task = Record<string, any> & { id: string; state: string; kind: string };

const FINAL = new Set(['succeeded', 'failed', 'cancelled']);

export function tasksView(params: URLSearchParams): { el: HTMLElement; dispose: () => void } {
  let disposed = false;
  let sub: { close(): void | Promise<void> } | null = null;
  const tasks = new Map<string, Task>();
  let stateFilter = params.get('state') ?? '';
  const highlight = params.get('highlight');
  const rows = new Map<string, HTMLTableRowElement>();
  const tbody = h('tbody');
  const countEl = h('span', { class: 'muted', 'data-testid': 'tasks-count' });
  const liveBadge = h('span', { class: 'badge', 'data-testid': 'live-status' }, 'connecting…');

  function progressOf(t: Task): number | null {
    if (t.state === 'succeeded') return 100;
    return typeof t.progress === 'number' ? Math.max(0, Math.min(100, t.progress)) : null;
  }

  function rowFor(t: Task): HTMLTableRowElement {
    const p = progressOf(t);
    const bar = h(
      'div',
      {
        class: `progress pstate-${t.state}`,
        role: 'progressbar',
        'aria-valuemin': '0',
        'aria-valuemax': '100',
        'aria-valuenow': p === null ? undefined : String(Math.round(p)),
        'data-testid': 'task-progress',
        'data-progress': p === null ? '' : String(Math.round(p)),
      },
      h('div', { class: 'bar', style: { width: `${p ?? 0}%` } }),
      h('span', { class: 'label' }, p === null ? '—' : `${Math.round(p)}%`),
    );
    const steps = Array.isArray(t.steps)
      ? t.steps.map((s: { name: string; state: string }) => h('span', { class: `step step-${s.state}`, title: s.state }, s.name))
      : [];
    const canCancel = !FINAL.has(t.state);
    return h(
      'tr',
      { 'data-testid': 'task-row', 'data-id': t.id, 'data-state': t.state, class: t.id === highlight ? 'highlight' : '' },
      h('td', { class: 'mono small-text id-cell', title: t.id }, t.id),
      h('td', null, t.kind),
      h('td', null, h('span', { class: `state state-${t.state}`, 'data-testid': 'task-state' }, t.state)),
      h('td', { class: 'progress-cell' }, bar),
      h('td', { 'data-testid': 'task-message' }, t.message ?? (t.error ? `${t.error.title ?? ''}${t.error.detail ? ': ' + t.error.detail : ''}` : '')),
      h('td', { 'data-testid': 'task-eta' }, typeof t.eta === 'number' && !FINAL.has(t.state) ? `${t.eta.toFixed(1)} s` : ''),
      h('td', null, steps),
      h('td', { class: 'muted' }, `${t.attempt ?? ''}/${t.max_attempts ?? ''}`),
      h('td', { class: 'muted' }, fmtTime(t.created)),
      h(
        'td',
        null,
        canCancel
          ? h('button', { class: 'small danger', 'data-testid': 'task-cancel', onclick: () => cancel(t.id) }, 'Cancel')
          : h('button', { class: 'small', 'data-testid': 'task-details', onclick: () => details(t.id) }, 'Details'),
      ),
    );
  }

  function visible(t: Task): boolean {
    return !stateFilter || t.state === stateFilter;
  }

  function renderAll(): void {
    const list = [...tasks.values()].filter(visible).sort((a, b) => (a.created < b.created ? 1 : a.created > b.created ? -1 : a.id < b.id ? 1 : -1));
    rows.clear();
    clear(tbody);
    if (!list.length) tbody.append(h('tr', null, h('td', { colspan: '10', class: 'muted', 'data-testid': 'tasks-empty' }, 'No tasks.')));
    for (const t of list) {
      const r = rowFor(t);
      rows.set(t.id, r);
      tbody.append(r);
    }
    countEl.textContent = `${list.length} shown`;
  }

  function upsert(t: Task): void {
    const known = tasks.get(t.id);
    // Events can race a list response: never go back to an older snapshot.
    if (known && FINAL.has(known.state) && !FINAL.has(t.state)) return;
    tasks.set(t.id, { ...known, ...t });
    const old = rows.get(t.id);
    if (!old) {
      renderAll();
      return;
    }
    const merged = tasks.get(t.id)!;
    if (!visible(merged)) {
      renderAll();
      return;
    }
    const r = rowFor(merged);
    old.replaceWith(r);
    rows.set(t.id, r);
  }

  // Live events may overtake a list response: a task that got an event after the list was
  // asked for keeps the event's (newer) snapshot.
  let eventClock = 0;
  const touched = new Map<string, number>();
  async function load(): Promise<void> {
    const filter: Record<string, string> = {};
    if (stateFilter) filter.state = stateFilter;
    const asked = eventClock;
    const page = await attempt(() => state.lb.tasks.list({ filter, ordering: '-created', limit: 100 }));
    if (!page || disposed) return;
    hideError();
    const fresh = new Map<string, Task>();
    for (const t of (page.items ?? page.results) as Task[]) {
      const known = tasks.get(t.id);
      fresh.set(t.id, known && (touched.get(t.id) ?? -1) > asked ? known : t);
    }
    // Keep tasks that arrived by event after the list was asked for (newer than the page).
    for (const [id, t] of tasks) if (!fresh.has(id) && (touched.get(id) ?? -1) > asked) fresh.set(id, t);
    tasks.clear();
    for (const [id, t] of fresh) tasks.set(id, t);
    renderAll();
  }

  async function cancel(id: string): Promise<void> {
    const t = await attempt(() => state.lb.tasks.cancel(id));
    if (t && typeof t === 'object' && 'state' in (t as object)) upsert(t as Task);
  }

  const detailHost = h('div', { class: 'form-host' });
  async function details(id: string): Promise<void> {
    const t = tasks.get(id);
    if (!t) return;
    clear(
      detailHost,
      h('div', { class: 'card' }, h('h3', null, `Task ${id}`), h('pre', { 'data-testid': 'task-json' }, JSON.stringify(t, null, 2)),
        h('button', { onclick: () => clear(detailHost) }, 'Close')),
    );
  }

  // ---- start a task -----------------------------------------------------------------------
  const actions: { coll: string; name: string; detail: boolean }[] = [];
  for (const c of state.schema.collections) for (const a of c.actions) if (a.task || state.schema.source === 'fallback') actions.push({ coll: c.name, name: a.name, detail: a.detail });
  if (!actions.length) {
    // No schema (or no task actions declared in it): offer every declared action, or cars' build.
    for (const c of state.schema.collections) for (const a of c.actions) actions.push({ coll: c.name, name: a.name, detail: a.detail });
    if (!actions.length) actions.push({ coll: state.schema.collections[0]?.name ?? 'cars', name: 'build', detail: true });
  }
  const actionSel = h(
    'select',
    { 'data-testid': 'task-action' },
    actions.map((a, i) => h('option', { value: String(i) }, `${a.coll}${a.detail ? '/{id}' : ''}:${a.name}`)),
  );
  const pkSel = h('select', { 'data-testid': 'task-pk' });
  const inputTa = h('input', { type: 'text', class: 'mono', 'data-testid': 'task-input', placeholder: '{} (JSON input, optional)' });
  async function refreshPks(): Promise<void> {
    const a = actions[Number(actionSel.value)];
    pkSel.disabled = !a?.detail;
    if (!a?.detail) {
      clear(pkSel);
      return;
    }
    const page = await attempt(() => state.lb.collection(a.coll).list({ ordering: '-created', limit: 100 }));
    if (!page || disposed) return;
    const items = (page.items ?? page.results) as Record<string, any>[];
    clear(
      pkSel,
      items.length ? null : h('option', { value: '' }, `(no ${a.coll} records)`),
      items.map((r) => {
        const label = Object.entries(r).filter(([k]) => !['id', 'created', 'updated', 'version', 'owner'].includes(k)).slice(0, 3).map(([, v]) => v).filter((v) => v !== null && v !== '').join(' ');
        return h('option', { value: r.id }, `${r.id}${label ? ' — ' + label : ''}`);
      }),
    );
  }
  actionSel.addEventListener('change', () => void refreshPks());
  async function start(): Promise<void> {
    const a = actions[Number(actionSel.value)];
    if (!a) return;
    let input: unknown = {};
    if (inputTa.value.trim()) {
      try {
        input = JSON.parse(inputTa.value);
      } catch {
        await attempt(() => Promise.reject(new Error('Task input is not valid JSON.')));
        return;
      }
    }
    const id = a.detail ? pkSel.value : undefined;
    if (a.detail && !id) {
      await attempt(() => Promise.reject(new Error(`Choose a ${a.coll} record first.`)));
      return;
    }
    const res = await attempt(() => state.lb.collection(a.coll).action(a.name, { id, input }));
    if (res && typeof res === 'object' && 'state' in (res as object) && 'kind' in (res as object)) upsert(res as Task);
  }

  const stateSel = h(
    'select',
    { 'data-testid': 'tasks-state-filter', onchange: () => { stateFilter = stateSel.value; void load(); } },
    ['', 'pending', 'running', 'succeeded', 'failed', 'cancelled'].map((s) => h('option', { value: s, selected: s === stateFilter ? true : undefined }, s || 'all states')),
  );

  (async () => {
    try {
      const handle = await state.lb.realtime.subscribe('tasks', (ev: any) => {
        if (ev?.action === 'resync') {
          // Events were lost (the history no longer reached back): list again.
          void load();
          return;
        }
        const t = ev?.data as Task | undefined;
        if (t && typeof t === 'object' && t.id) {
          touched.set(t.id, ++eventClock);
          if (ev.action === 'delete') {
            tasks.delete(t.id);
            renderAll();
          } else upsert(t);
        }
      });
      if (disposed) {
        void handle.close();
        return;
      }
      sub = handle;
      liveBadge.textContent = 'live';
      liveBadge.classList.add('ok');
      // Anything that changed between the first list and the subscription: list again.
      void load();
    } catch (e) {
      liveBadge.textContent = 'not live';
      liveBadge.classList.add('bad');
      liveBadge.title = e instanceof Error ? e.message : String(e);
    }
  })();

  const el = h(
    'section',
    { class: 'view', 'data-testid': 'tasks-view' },
    h('div', { class: 'view-head' }, h('h2', null, 'Tasks'), liveBadge, countEl, h('span', { class: 'grow' }), stateSel,
      h('button', { 'data-testid': 'tasks-refresh', onclick: () => void load() }, 'Refresh')),
    h(
      'div',
      { class: 'card toolbar', 'data-testid': 'task-start-form' },
      h('strong', null, 'Start a task '),
      h('label', null, 'Action ', actionSel),
      h('label', null, 'Record ', pkSel),
      h('label', { class: 'grow' }, 'Input ', inputTa),
      h('button', { class: 'primary', 'data-testid': 'task-start', onclick: () => void start() }, 'Start'),
    ),
    detailHost,
    h(
      'div',
      { class: 'table-wrap' },
      h(
        'table',
        { class: 'records tasks', 'data-testid': 'tasks-table' },
        h('thead', null, h('tr', null, ['id', 'kind', 'state', 'progress', 'message', 'eta', 'steps', 'attempt', 'created', ''].map((c) => h('th', null, c)))),
        tbody,
      ),
    ),
  );
  void load();
  void refreshPks();
  return {
    el,
    dispose: () => {
      disposed = true;
      if (sub) void sub.close();
    },
  };
}
