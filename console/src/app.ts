// Shared state of the console: the client, the signed-in user, the schema, the frame tap and
// the error banner.
import { Livebase, ProblemError } from '@livebase/client';
import { h, clear } from './dom';
import type { Rule, Schema } from './schema';

export interface User {
  id: string;
  username: string;
  admin?: boolean;
}

export interface Frame {
  dir: 'in' | 'out';
  text: string;
  at: Date;
}

const TOKEN_KEY = 'livebase.console.token';

type Listener<T> = (v: T) => void;

class Emitter<T> {
  private fns = new Set<Listener<T>>();
  on(fn: Listener<T>): () => void {
    this.fns.add(fn);
    return () => this.fns.delete(fn);
  }
  emit(v: T): void {
    for (const fn of [...this.fns]) {
      try {
        fn(v);
      } catch (e) {
        console.error(e);
      }
    }
  }
}

export const frames = new Emitter<Frame>();
/** Every frame of the console's socket, newest last (bounded). */
export const frameLog: Frame[] = [];
frames.on((f) => {
  frameLog.push(f);
  if (frameLog.length > 2000) frameLog.splice(0, frameLog.length - 2000);
});

/**
 * A WebSocket that reports every frame it sends and receives. The client is given this class
 * (its `WebSocket` option), so the message console sees the real traffic, in and out.
 */
export class TapWebSocket extends WebSocket {
  constructor(url: string | URL, protocols?: string | string[]) {
    super(url, protocols);
    this.addEventListener('message', (ev) => {
      frames.emit({ dir: 'in', text: typeof ev.data === 'string' ? ev.data : '[binary frame]', at: new Date() });
    });
  }
  override send(data: string | ArrayBufferLike | Blob | ArrayBufferView): void {
    frames.emit({ dir: 'out', text: typeof data === 'string' ? data : '[binary frame]', at: new Date() });
    super.send(data);
  }
}

export const state = {
  lb: null as unknown as Livebase,
  user: null as User | null,
  schema: null as unknown as Schema,
  userChanged: new Emitter<User | null>(),
};

/**
 * Whether the signed-in user may do what `rule` guards, on `record` for the owner rule. A rule
 * the schema did not state is allowed (the server still decides; C++ permission callbacks may
 * refuse more).
 */
export function may(rule: Rule, record?: Record<string, unknown> | null): boolean {
  const u = state.user;
  switch (rule) {
    case undefined:
    case 'public':
      return true;
    case 'authenticated':
      return !!u;
    case 'owner':
      return !!u && (!!u.admin || !record || record.owner === u.id);
    case 'admin':
      return !!u?.admin;
    case 'nobody':
      return false;
  }
}

/** Why `rule` refuses the user, for a disabled control's title. */
export function refusal(rule: Rule): string {
  switch (rule) {
    case 'authenticated':
      return 'Log in first.';
    case 'owner':
      return state.user ? "Only the record's owner or an admin may." : 'Log in first (only the owner or an admin may).';
    case 'admin':
      return 'Only admins may.';
    case 'nobody':
      return 'The server does not offer this.';
    default:
      return '';
  }
}

// ---- owners -------------------------------------------------------------------------------

// Usernames by user id: the signed-in user, and every user when an admin (GET /api/users).
const usernames = new Map<string, string>();
let usersListed: Promise<void> | null = null;

/** The username of user `id` when the console may know it, else null. */
export function usernameOf(id: string): string | null {
  if (state.user && state.user.id === id) return state.user.username;
  return usernames.get(id) ?? null;
}

/**
 * Loads every username once (admins only: /api/users is admin-only) and calls `then` when new
 * names are known.
 */
export function loadUsernames(then: () => void): void {
  if (!state.user?.admin) return;
  if (!usersListed) {
    usersListed = (async () => {
      for (let offset = 0; offset < 5000; offset += 500) {
        const page = await state.lb.collection('users').list({ limit: 500, offset });
        for (const u of page.items as Array<{ id: string; username: string }>) usernames.set(u.id, u.username);
        if (page.items.length < 500) break;
      }
    })().catch((e) => {
      console.warn('users:', e);
      usersListed = null;
    });
  }
  void usersListed.then(then);
}

/** An owner cell: the username (with "you"), or the id's end with the whole id on hover. */
export function ownerEl(id: unknown): HTMLElement {
  if (typeof id !== 'string' || !id) return h('span', { class: 'muted', title: 'no owner' }, '—');
  const name = usernameOf(id);
  const mine = state.user?.id === id;
  if (name) return h('span', { title: `user ${id}`, class: mine ? 'owner mine' : 'owner' }, name, mine ? h('span', { class: 'muted' }, ' (you)') : null);
  return h('span', { title: `user ${id} (usernames are shown to admins)`, class: 'owner mono' }, 'user …' + id.slice(-6));
}

// ---- toasts -------------------------------------------------------------------------------

let toastHost: HTMLElement | null = null;

export function mountToasts(el: HTMLElement): void {
  toastHost = el;
}

/** A short confirmation at the bottom right (announced to screen readers), gone after 5 s. */
export function toast(text: string, action?: { label: string; run: () => void }): void {
  if (!toastHost) return;
  const item = h(
    'div',
    { class: 'toast', 'data-testid': 'toast' },
    h('span', null, text),
    action ? h('button', { class: 'link', 'data-testid': 'toast-action', onclick: () => { item.remove(); action.run(); } }, action.label) : null,
    h('button', { class: 'link', 'aria-label': 'Dismiss', onclick: () => item.remove() }, '×'),
  );
  toastHost.append(item);
  while (toastHost.childElementCount > 4) toastHost.firstElementChild?.remove();
  window.setTimeout(() => item.remove(), 5000);
}

export function savedToken(): string | undefined {
  return localStorage.getItem(TOKEN_KEY) ?? undefined;
}

export function saveToken(token: string | null | undefined): void {
  if (token) localStorage.setItem(TOKEN_KEY, token);
  else localStorage.removeItem(TOKEN_KEY);
}

export function makeClient(token?: string): Livebase {
  return new Livebase({ url: location.origin, token, WebSocket: TapWebSocket as unknown as typeof WebSocket });
}

// ---- errors -------------------------------------------------------------------------------

let banner: HTMLElement | null = null;

export function mountErrorBanner(el: HTMLElement): void {
  banner = el;
}

/** Renders an error (problem+json from the server, or anything else) into a node. */
export function describeError(e: unknown): HTMLElement {
  if (e instanceof ProblemError) {
    const p = e as ProblemError & { errors?: Record<string, string[]>; problem?: Record<string, unknown> };
    const fieldErrors = (p.errors ?? (p.problem?.errors as Record<string, string[]> | undefined)) || undefined;
    const param = (p as unknown as { parameter?: string }).parameter ?? (p.problem?.parameter as string | undefined);
    return h(
      'div',
      { class: 'problem' },
      h('strong', { 'data-testid': 'error-title' }, `${p.status ?? ''} ${p.title ?? 'Error'}`.trim()),
      p.detail ? h('span', { 'data-testid': 'error-detail' }, ' — ' + p.detail) : null,
      param ? h('span', null, ` (parameter: ${param})`) : null,
      fieldErrors && typeof fieldErrors === 'object'
        ? h(
            'ul',
            { class: 'field-errors' },
            Object.entries(fieldErrors).map(([f, msgs]) =>
              h('li', { 'data-testid': `error-field-${f}` }, `${f}: ${Array.isArray(msgs) ? msgs.join(' ') : String(msgs)}`),
            ),
          )
        : null,
    );
  }
  const msg = e instanceof Error ? e.message : String(e);
  return h('div', { class: 'problem' }, h('strong', { 'data-testid': 'error-title' }, 'Error'), h('span', { 'data-testid': 'error-detail' }, ' — ' + msg));
}

export function showError(e: unknown): void {
  console.warn(e);
  if (!banner) return;
  clear(banner, describeError(e), h('button', { class: 'link', 'data-testid': 'error-dismiss', onclick: () => hideError() }, 'dismiss'));
  banner.hidden = false;
}

export function hideError(): void {
  if (banner) {
    clear(banner);
    banner.hidden = true;
  }
}

/** Runs an async action, showing its error in the banner; returns undefined on failure. */
export async function attempt<T>(fn: () => Promise<T>): Promise<T | undefined> {
  try {
    const v = await fn();
    return v;
  } catch (e) {
    showError(e);
    return undefined;
  }
}
