// A tiny DOM helper: h('div', {class: 'x', 'data-testid': 'y', onclick: fn}, child, ...).

type Attrs = Record<string, unknown>;
export type Child = Node | string | number | null | undefined | false | Child[];

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs | null = null,
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith('on') && typeof v === 'function') {
        el.addEventListener(k.slice(2), v as EventListener);
      } else if (k === 'class') {
        el.className = String(v);
      } else if (k === 'value' && 'value' in el) {
        (el as HTMLInputElement).value = String(v);
      } else if (k === 'checked' && el instanceof HTMLInputElement) {
        el.checked = Boolean(v);
      } else if (k === 'style' && typeof v === 'object') {
        Object.assign(el.style, v);
      } else {
        el.setAttribute(k, v === true ? '' : String(v));
      }
    }
  }
  append(el, children);
  return el;
}

export function append(el: Node, children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

export function clear(el: Node, ...children: Child[]): void {
  while (el.firstChild) el.removeChild(el.firstChild);
  append(el, children);
}

/** Shown for null and missing values. */
export const NONE = '—';

/** A short display form of any JSON value for table cells: null and missing as "—". */
export function cell(v: unknown): string {
  if (v === null || v === undefined) return NONE;
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

export function fmtTime(iso: unknown): string {
  if (typeof iso !== 'string') return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleTimeString();
}

/** "just now", "5 s ago", "3 min ago", "2 h ago", "4 d ago", or the date beyond a month. */
export function fmtRelative(iso: string, now = Date.now()): string {
  const t = new Date(iso).getTime();
  if (Number.isNaN(t)) return iso;
  const s = Math.round((now - t) / 1000);
  if (s < 0) return 'in the future';
  if (s < 5) return 'just now';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  if (s < 30 * 86400) return `${Math.floor(s / 86400)} d ago`;
  return new Date(t).toLocaleDateString();
}

/** A <time> showing a relative time ("3 min ago") with the ISO time on hover; kept current. */
export function timeEl(iso: unknown): HTMLElement {
  if (typeof iso !== 'string' || !iso) return h('span', { class: 'muted' }, NONE);
  return h('time', { datetime: iso, title: iso, 'data-relative': '' }, fmtRelative(iso));
}

/** Sets a <time> made by timeEl to another instant (no-op when unchanged). */
export function setTime(el: HTMLElement, iso: unknown): void {
  if (typeof iso !== 'string' || !iso) {
    el.replaceChildren(NONE);
    return;
  }
  if (el.getAttribute('datetime') === iso) return;
  el.setAttribute('datetime', iso);
  el.title = iso;
  el.textContent = fmtRelative(iso);
}

// Relative times age: refresh every one on the page twice a minute.
setInterval(() => {
  const now = Date.now();
  for (const el of document.querySelectorAll<HTMLElement>('time[data-relative]')) {
    const iso = el.getAttribute('datetime');
    if (iso) {
      const text = fmtRelative(iso, now);
      if (el.textContent !== text) el.textContent = text;
    }
  }
}, 30_000);

/** Sets a node's text only when it differs (no mutation, no lost selection otherwise). */
export function setText(el: Node, text: string): void {
  if (el.textContent !== text) el.textContent = text;
}

/**
 * "…7XK3QF" for long ids (a ULID's last characters are its random part; its first ones are the
 * time, shared by records made together); the caller puts the whole id in a title.
 */
export function shortId(id: string): string {
  return id.length > 10 ? '…' + id.slice(-6) : id;
}
