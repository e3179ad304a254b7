// The WebSocket message console: send raw channels-api envelopes on the console's socket and
// see every frame in and out (like channels-api's debugger page).
import { h, clear } from '../dom';
import { state, frames, frameLog, showError, hideError, type Frame } from '../app';

let nextId = 1;

function templates(): Record<string, () => object> {
  const coll = state.schema.collections[0]?.name ?? 'cars';
  const rid = () => `console-${nextId++}`;
  return {
    list: () => ({ stream: coll, payload: { action: 'list', data: { filter: {}, ordering: '-created', limit: 5 }, request_id: rid() } }),
    retrieve: () => ({ stream: coll, payload: { action: 'retrieve', pk: '<id>', request_id: rid() } }),
    create: () => ({ stream: coll, payload: { action: 'create', data: {}, request_id: rid() } }),
    patch: () => ({ stream: coll, payload: { action: 'patch', pk: '<id>', data: {}, request_id: rid() } }),
    subscribe: () => ({ stream: coll, payload: { action: 'subscribe', data: { filter: {} }, request_id: rid() } }),
    observe: () => ({ stream: coll, payload: { action: 'observe', data: { filter: {}, ordering: '-created', limit: 10 }, request_id: rid() } }),
    'tasks list': () => ({ stream: 'tasks', payload: { action: 'list', data: { limit: 10 }, request_id: rid() } }),
    'auth me': () => ({ stream: 'auth', payload: { action: 'me', request_id: rid() } }),
  };
}

export function wsConsoleView(): { el: HTMLElement; dispose: () => void } {
  const log = h('div', { class: 'frames', 'data-testid': 'ws-frames', role: 'log', tabindex: '0', 'aria-label': 'Frames in and out' });
  const input = h('textarea', { class: 'mono', rows: '6', 'data-testid': 'ws-input', spellcheck: 'false', 'aria-label': 'Envelope to send (JSON)' });
  input.value = JSON.stringify(templates().list(), null, 2);
  const statusEl = h('span', { class: 'badge', 'data-testid': 'ws-console-status' });
  const filterIn = h('input', { type: 'text', placeholder: 'only frames containing…', 'aria-label': 'Show only frames containing', 'data-testid': 'ws-frame-filter' });
  let paused = false;

  function frameEl(f: Frame): HTMLElement {
    let pretty = f.text;
    try {
      pretty = JSON.stringify(JSON.parse(f.text));
    } catch {
      /* not JSON: as is */
    }
    // Never show credentials on screen (screenshots, screen sharing).
    pretty = pretty.replace(/("(?:token|password)"\s*:\s*)"[^"]*"/g, '$1"•••"');
    return h(
      'div',
      { class: `frame frame-${f.dir}`, 'data-testid': 'ws-frame', 'data-dir': f.dir },
      h('span', { class: 'dir' }, f.dir === 'in' ? '⬇ in ' : '⬆ out'),
      h('span', { class: 'time muted' }, f.at.toLocaleTimeString()),
      h('code', { class: 'mono' }, pretty),
    );
  }
  function matches(f: Frame): boolean {
    const q = filterIn.value.trim();
    return !q || f.text.includes(q);
  }
  function renderAll(): void {
    clear(log, frameLog.filter(matches).slice(-500).map(frameEl));
    log.scrollTop = log.scrollHeight;
  }
  filterIn.addEventListener('input', renderAll);
  const off = frames.on((f) => {
    if (paused || !matches(f)) return;
    const stick = log.scrollTop + log.clientHeight >= log.scrollHeight - 20;
    log.append(frameEl(f));
    while (log.childElementCount > 500) log.firstElementChild?.remove();
    if (stick) log.scrollTop = log.scrollHeight;
  });

  function updateStatus(): void {
    const s = String(state.lb.realtime.status ?? 'unknown');
    statusEl.textContent = s;
    statusEl.className = `badge ${s === 'open' || s === 'connected' ? 'ok' : 'bad'}`;
  }
  const offStatus = state.lb.realtime.on('status', () => updateStatus());
  updateStatus();

  function send(): void {
    let msg: unknown;
    try {
      msg = JSON.parse(input.value);
    } catch (e) {
      showError(new Error('Not valid JSON: ' + (e instanceof Error ? e.message : String(e))));
      return;
    }
    try {
      state.lb.realtime.send(msg as any);
      hideError();
    } catch (e) {
      showError(e);
    }
  }
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      send();
    }
  });

  const t = templates();
  const el = h(
    'section',
    { class: 'view ws-console', 'data-testid': 'ws-view' },
    h('div', { class: 'view-head' }, h('h2', null, 'WebSocket console'), statusEl,
      h('button', { 'data-testid': 'ws-connect', onclick: () => { void Promise.resolve(state.lb.realtime.connect()).catch(showError); } }, 'Connect'),
      h('button', { 'data-testid': 'ws-disconnect', onclick: () => { void Promise.resolve(state.lb.realtime.close()).catch(showError); } }, 'Disconnect')),
    h('p', { class: 'muted' }, 'Frames are channels-api envelopes: {"stream": "<collection>|tasks|auth", "payload": {"action", "pk", "data", "request_id"}}. Ctrl+Enter sends.'),
    h('div', { class: 'toolbar' }, h('span', null, 'Templates: '),
      Object.entries(t).map(([name, make]) => h('button', { class: 'small', 'data-testid': `ws-template-${name.replace(' ', '-')}`, onclick: () => { input.value = JSON.stringify(make(), null, 2); } }, name))),
    input,
    h('div', { class: 'toolbar' },
      h('button', { class: 'primary', 'data-testid': 'ws-send', onclick: send }, 'Send'),
      h('button', { 'data-testid': 'ws-clear', onclick: () => { frameLog.length = 0; renderAll(); } }, 'Clear'),
      h('label', null, h('input', { type: 'checkbox', onchange: (e: Event) => { paused = (e.target as HTMLInputElement).checked; if (!paused) renderAll(); } }), ' pause'),
      filterIn),
    log,
  );
  renderAll();
  return {
    el,
    dispose: () => {
      off();
      if (typeof offStatus === 'function') offStatus();
    },
  };
}
