// The live event feed: every change event and task update that reaches the console's socket
// (from the subscriptions of the open view), newest first. A task's updates share one item,
// updated in place, so a running task does not bury the record events. The panel collapses.
import { h, clear, fmtTime, setText, shortId } from '../dom';
import { state } from '../app';

const MAX = 200;
const COLLAPSED_KEY = 'livebase.console.feed-collapsed';

export function mountFeed(host: HTMLElement, layout: HTMLElement): void {
  const list = h('ol', { class: 'feed', 'data-testid': 'event-feed', reversed: true, tabindex: '0', 'aria-label': 'Live events, newest first' });
  const taskItems = new Map<string, { li: HTMLElement; summary: HTMLElement; meta: HTMLElement; tag: HTMLElement; updates: number }>();
  let paused = false;
  const pauseBox = h('input', { type: 'checkbox', 'data-testid': 'feed-pause', onchange: () => { paused = pauseBox.checked; } });
  const toggle = h('button', {
    class: 'small',
    'data-testid': 'feed-toggle',
    'aria-controls': 'feed-body',
    onclick: () => setCollapsed(!layout.classList.contains('feed-collapsed')),
  });
  const body = h('div', { id: 'feed-body', class: 'feed-body' },
    h('div', { class: 'panel-tools' },
      h('label', { class: 'muted' }, pauseBox, ' pause'),
      h('button', { class: 'small', 'data-testid': 'feed-clear', onclick: () => { clear(list); taskItems.clear(); } }, 'Clear')),
    list);

  function setCollapsed(collapsed: boolean): void {
    layout.classList.toggle('feed-collapsed', collapsed);
    toggle.setAttribute('aria-expanded', String(!collapsed));
    toggle.textContent = collapsed ? '‹ Events' : 'Hide ›';
    toggle.title = collapsed ? 'Show the live events' : 'Hide the live events';
    body.hidden = collapsed;
    try {
      localStorage.setItem(COLLAPSED_KEY, collapsed ? '1' : '0');
    } catch {
      /* private mode: not remembered */
    }
  }
  clear(host, h('div', { class: 'panel-head' }, h('h3', null, 'Live events'), toggle), body);
  setCollapsed(localStorage.getItem(COLLAPSED_KEY) === '1');

  function trim(): void {
    while (list.childElementCount > MAX) {
      const last = list.lastElementChild as HTMLElement | null;
      if (last?.dataset.task) taskItems.delete(last.dataset.task);
      last?.remove();
    }
  }

  state.lb.realtime.on('message', (frame: any) => {
    if (paused || !frame || typeof frame !== 'object') return;
    const p = frame.payload;
    // Events carry a subscription id and a seq; replies carry response_status instead.
    if (!p || typeof p !== 'object' || p.response_status !== undefined) return;
    if (p.subscription === undefined && p.observer === undefined) return;
    const rec = p.data && typeof p.data === 'object' ? p.data : {};
    const at = fmtTime(new Date().toISOString());
    if (frame.stream === 'tasks' && typeof rec.id === 'string' && p.action !== 'delete') {
      const summary = `${rec.kind ?? ''} ${rec.state ?? ''}${typeof rec.progress === 'number' ? ' ' + Math.round(rec.progress) + '%' : ''}${rec.message ? ' · ' + rec.message : ''}`;
      const known = taskItems.get(rec.id);
      if (known) {
        // The same task again: its one item follows it where it is.
        known.updates++;
        setText(known.summary, summary);
        setText(known.meta, `seq ${p.seq ?? '?'} · ${at} · ${known.updates} updates`);
        setText(known.tag, rec.state ?? p.action);
        known.tag.className = `tag tag-task-${rec.state ?? ''}`;
        known.li.dataset.state = rec.state ?? '';
        return;
      }
      const tag = h('span', { class: `tag tag-task-${rec.state ?? ''}` }, rec.state ?? p.action);
      const meta = h('div', { class: 'muted small-text' }, `seq ${p.seq ?? '?'} · ${at}`);
      const summaryEl = h('div', { class: 'small-text' }, summary);
      const li = h('li', { class: 'event ev-task', 'data-testid': 'event-item', 'data-stream': 'tasks', 'data-action': p.action, 'data-pk': rec.id, 'data-task': rec.id, 'data-state': rec.state ?? '' },
        h('div', null, tag, ' ', h('strong', null, 'task'), ' ', h('span', { class: 'mono small-text', title: rec.id }, shortId(rec.id))),
        meta, summaryEl);
      taskItems.set(rec.id, { li, summary: summaryEl, meta, tag, updates: 1 });
      list.prepend(li);
      trim();
      return;
    }
    let summary: string;
    if (p.action === 'observe') summary = `${p.data?.msg ?? ''} @${p.data?.order ?? ''} ${p.data?.pk ?? ''}`;
    else summary = Object.entries(rec).filter(([k]) => !['id', 'created', 'updated', 'owner'].includes(k)).slice(0, 4).map(([k, v]) => `${k}=${typeof v === 'object' && v !== null ? JSON.stringify(v) : v}`).join(' ');
    const item = h(
      'li',
      { class: `event ev-${p.action}`, 'data-testid': 'event-item', 'data-stream': frame.stream, 'data-action': p.action, 'data-pk': p.pk ?? rec.id ?? '' },
      h('div', null, h('span', { class: `tag tag-${p.action}` }, p.action), ' ', h('strong', null, frame.stream), ' ', h('span', { class: 'mono small-text', title: p.pk ?? '' }, p.pk ? shortId(p.pk) : '')),
      h('div', { class: 'muted small-text' }, `seq ${p.seq ?? '?'} · ${at}`),
      summary ? h('div', { class: 'small-text' }, summary) : null,
    );
    list.prepend(item);
    trim();
  });
}
