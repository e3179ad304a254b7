// Tasks: the caller's tasks with live progress (a realtime subscription to the `tasks` stream),
// cancel buttons, and a form that starts a task through a collection action. A task's row is
// made once and updated in place: progress events never replace the Cancel button a person is
// pressing.
import { h, clear, timeEl, setText, shortId, NONE } from '../dom';
import { state, attempt, hideError, toast } from '../app';

type Task = Record<string, any> & { id: string; state: string; kind: string };

const FINAL = new Set(['succeeded', 'failed', 'cancelled']);

interface TaskRow {
  tr: HTMLTableRowElement;
  action: HTMLTableCellElement;
  stateEl: HTMLElement;
  bar: HTMLElement;
  fill: HTMLElement;
  label: HTMLElement;
  message: HTMLElement;
  eta: HTMLElement;
  steps: HTMLElement;
  /** What the action cell holds now: a Cancel button while running, Details once finished. */
  actionFor: 'cancel' | 'details' | null;
  stepsShown: string;
}

export function tasksView(params: URLSearchParams): { el: HTMLElement; dispose: () => void } {
  let disposed = false;
  let sub: { close(): void | Promise<void> } | null = null;
  const tasks = new Map<string, Task>();
  let stateFilter = params.get('state') ?? '';
  const highlight = params.get('highlight');
  const rows = new Map<string, TaskRow>();
  const tbody = h('tbody');
  const countEl = h('span', { class: 'muted', 'data-testid': 'tasks-count' });
  const liveBadge = h('span', { class: 'badge', 'data-testid': 'live-status' }, 'connecting…');
  const cancelling = new Set<string>();

  function progressOf(t: Task): number | null {
    if (t.state === 'succeeded') return 100;
    return typeof t.progress === 'number' ? Math.max(0, Math.min(100, t.progress)) : null;
  }

  function newRow(t: Task): TaskRow {
    const fill = h('div', { class: 'bar' });
    const label = h('span', { class: 'plabel', 'aria-hidden': 'true' });
    const bar = h('div', {
      class: 'progress',
      role: 'progressbar',
      'aria-label': `Progress of task ${t.id}`,
      'aria-valuemin': '0',
      'aria-valuemax': '100',
      'data-testid': 'task-progress',
    }, fill);
    const row: TaskRow = {
      tr: h('tr', { 'data-testid': 'task-row', 'data-id': t.id, class: t.id === highlight ? 'highlight' : '' }),
      action: h('td', { class: 'actions-col' }),
      stateEl: h('span', { class: 'state', 'data-testid': 'task-state' }),
      bar,
      fill,
      label,
      message: h('div', { 'data-testid': 'task-message', class: 'message' }),
      eta: h('div', { 'data-testid': 'task-eta', class: 'eta muted small-text' }),
      steps: h('div', { class: 'steps' }),
      actionFor: null,
      stepsShown: '',
    };
    row.tr.append(
      row.action,
      h('td', { class: 'task-cell' }, h('div', { title: t.kind }, t.kind), h('div', { class: 'mono small-text muted', title: t.id }, shortId(t.id))),
      h('td', null, row.stateEl),
      h('td', { class: 'progress-cell' }, h('div', { class: 'progress-wrap' }, bar, label), row.eta),
      h('td', { class: 'message-cell' }, row.message, row.steps),
      h('td', { class: 'created' }, timeEl(t.created)),
    );
    return row;
  }

  /** Writes `t` into its row, touching only what changed. */
  function update(row: TaskRow, t: Task): void {
    row.tr.dataset.state = t.state;
    setText(row.stateEl, t.state);
    row.stateEl.className = `state state-${t.state}`;
    const p = progressOf(t);
    const pct = p === null ? '' : String(Math.round(p));
    if (row.bar.dataset.progress !== pct) {
      row.bar.dataset.progress = pct;
      if (p === null) row.bar.removeAttribute('aria-valuenow');
      else row.bar.setAttribute('aria-valuenow', pct);
      row.fill.style.width = `${p ?? 0}%`;
      setText(row.label, p === null ? NONE : `${pct}%`);
    }
    row.bar.className = `progress pstate-${t.state}`;
    setText(row.message, t.message ?? (t.error ? `${t.error.title ?? ''}${t.error.detail ? ': ' + t.error.detail : ''}` : ''));
    setText(row.eta, typeof t.eta === 'number' && !FINAL.has(t.state) ? `${t.eta.toFixed(1)} s left` : '');
    const steps = Array.isArray(t.steps) ? t.steps as Array<{ name: string; state: string }> : [];
    const stepsKey = JSON.stringify(steps);
    if (row.stepsShown !== stepsKey) {
      row.stepsShown = stepsKey;
      clear(row.steps, steps.map((s) => h('span', { class: `step step-${s.state}`, title: `${s.name}: ${s.state}` }, s.name)));
    }
    const want = FINAL.has(t.state) ? 'details' : 'cancel';
    if (row.actionFor !== want) {
      // Only a change of state swaps the button; progress never does.
      row.actionFor = want;
      clear(row.action, want === 'cancel'
        ? h('button', { class: 'small danger', 'data-testid': 'task-cancel', 'aria-label': `Cancel task ${t.id}`, onclick: (e: Event) => void cancel(t.id, e.currentTarget as HTMLButtonElement) }, 'Cancel')
        : h('button', { class: 'small', 'data-testid': 'task-details', 'aria-label': `Details of task ${t.id}`, onclick: () => details(t.id) }, 'Details'));
    }
  }

  function visible(t: Task): boolean {
    return !stateFilter || t.state === stateFilter;
  }

  function newestFirst(a: Task, b: Task): number {
    return a.created < b.created ? 1 : a.created > b.created ? -1 : a.id < b.id ? 1 : -1;
  }

  /** Brings the table in line with `tasks`: rows kept, updated, added, removed or reordered. */
  function renderAll(): void {
    const list = [...tasks.values()].filter(visible).sort(newestFirst);
    const keep = new Set(list.map((t) => t.id));
    for (const [id, row] of rows) if (!keep.has(id)) { row.tr.remove(); rows.delete(id); }
    const empty = tbody.querySelector('[data-testid="tasks-empty-row"]');
    if (list.length) empty?.remove();
    else if (!empty) tbody.append(h('tr', { 'data-testid': 'tasks-empty-row' }, h('td', { colspan: '6', class: 'muted', 'data-testid': 'tasks-empty' }, 'No tasks.')));
    list.forEach((t, i) => {
      let row = rows.get(t.id);
      if (!row) {
        row = newRow(t);
        rows.set(t.id, row);
      }
      update(row, t);
      if (tbody.children[i] !== row.tr) tbody.insertBefore(row.tr, tbody.children[i] ?? null);
    });
    setText(countEl, `${list.length} shown`);
  }

  function upsert(t: Task): void {
    const known = tasks.get(t.id);
    // Events can race a list response: never go back to an older snapshot.
    if (known && FINAL.has(known.state) && !FINAL.has(t.state)) return;
    const merged = { ...known, ...t };
    tasks.set(t.id, merged);
    const row = rows.get(t.id);
    if (row && visible(merged)) update(row, merged);
    else renderAll();
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

  async function cancel(id: string, button: HTMLButtonElement): Promise<void> {
    if (cancelling.has(id)) return;
    cancelling.add(id);
    button.disabled = true;
    setText(button, 'Cancelling…');
    const t = await attempt(() => state.lb.tasks.cancel(id));
    cancelling.delete(id);
    if (t && typeof t === 'object' && 'state' in (t as object)) {
      upsert(t as Task);
      toast(`Task ${shortId(id)}: ${(t as Task).state === 'cancelled' ? 'cancelled' : 'cancel requested'}`);
    } else if (button.isConnected) {
      button.disabled = false;
      setText(button, 'Cancel');
    }
  }

  const detailHost = h('div', { class: 'form-host' });
  function details(id: string): void {
    const t = tasks.get(id);
    if (!t) return;
    clear(
      detailHost,
      h('div', { class: 'card', 'data-testid': 'task-details-card' }, h('h3', null, `Task ${id}`),
        h('p', { class: 'muted small-text' }, `attempt ${t.attempt ?? '?'} of ${t.max_attempts ?? '?'}`),
        h('pre', { 'data-testid': 'task-json', tabindex: '0' }, JSON.stringify(t, null, 2)),
        h('button', { 'data-testid': 'task-details-close', onclick: () => clear(detailHost) }, 'Close')),
    );
    (detailHost.querySelector('[data-testid="task-details-close"]') as HTMLElement | null)?.focus();
  }
  const onKey = (e: KeyboardEvent) => {
    if (e.key === 'Escape' && !e.defaultPrevented && detailHost.firstChild) {
      e.preventDefault();
      clear(detailHost);
    }
  };
  document.addEventListener('keydown', onKey);

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
        return h('option', { value: r.id }, `${shortId(r.id)}${label ? ' — ' + label : ''}`);
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
    if (res && typeof res === 'object' && 'state' in (res as object) && 'kind' in (res as object)) {
      upsert(res as Task);
      toast(`Started ${a.name}: task ${shortId((res as Task).id)}`);
    }
  }

  const stateSel = h(
    'select',
    { 'data-testid': 'tasks-state-filter', 'aria-label': 'Show tasks in state', onchange: () => { stateFilter = stateSel.value; void load(); } },
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
      { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': 'Tasks' },
      h(
        'table',
        { class: 'records tasks', 'data-testid': 'tasks-table' },
        h('thead', null, h('tr', null,
          h('th', { scope: 'col', class: 'actions-col' }, h('span', { class: 'sr-only' }, 'Actions')),
          ['task', 'state', 'progress', 'message', 'created'].map((c) => h('th', { scope: 'col', class: `col-${c}` }, c)))),
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
      document.removeEventListener('keydown', onKey);
      if (sub) void sub.close();
    },
  };
}
