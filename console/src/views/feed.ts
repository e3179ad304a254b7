// The live event feed: every change event and task update that reaches the console's socket
// (from the subscriptions of the open view), newest first.
import { h, clear, fmtTime } from '../dom';
import { state } from '../app';

const MAX = 200;

export function mountFeed(host: HTMLElement): void {
  const list = h('ol', { class: 'feed', 'data-testid': 'event-feed', reversed: true });
  let paused = false;
  const pauseBox = h('input', { type: 'checkbox', 'data-testid': 'feed-pause', onchange: () => { paused = pauseBox.checked; } });
  clear(
    host,
    h('div', { class: 'panel-head' }, h('h3', null, 'Live events'),
      h('label', { class: 'muted' }, pauseBox, ' pause'),
      h('button', { class: 'small', 'data-testid': 'feed-clear', onclick: () => clear(list) }, 'Clear')),
    list,
  );
  state.lb.realtime.on('message', (frame: any) => {
    if (paused || !frame || typeof frame !== 'object') return;
    const p = frame.payload;
    // Events carry a subscription id and a seq; replies carry response_status instead.
    if (!p || typeof p !== 'object' || p.response_status !== undefined) return;
    if (p.subscription === undefined && p.observer === undefined) return;
    const rec = p.data && typeof p.data === 'object' ? p.data : {};
    let summary: string;
    if (p.action === 'observe') summary = `${p.data?.msg ?? ''} @${p.data?.order ?? ''} ${p.data?.pk ?? ''}`;
    else if (frame.stream === 'tasks') summary = `${rec.kind ?? ''} ${rec.state ?? ''}${typeof rec.progress === 'number' ? ' ' + Math.round(rec.progress) + '%' : ''}${rec.message ? ' · ' + rec.message : ''}`;
    else summary = Object.entries(rec).filter(([k]) => !['id', 'created', 'updated', 'owner'].includes(k)).slice(0, 4).map(([k, v]) => `${k}=${typeof v === 'object' && v !== null ? JSON.stringify(v) : v}`).join(' ');
    const item = h(
      'li',
      { class: `event ev-${p.action}`, 'data-testid': 'event-item', 'data-stream': frame.stream, 'data-action': p.action, 'data-pk': p.pk ?? rec.id ?? '' },
      h('div', null, h('span', { class: `tag tag-${p.action}` }, p.action), ' ', h('strong', null, frame.stream), ' ', h('span', { class: 'mono small-text' }, p.pk ?? '')),
      h('div', { class: 'muted small-text' }, `seq ${p.seq ?? '?'} · ${fmtTime(new Date().toISOString())}`),
      summary ? h('div', { class: 'small-text' }, summary) : null,
    );
    list.prepend(item);
    while (list.childElementCount > MAX) list.lastElementChild?.remove();
  });
}
