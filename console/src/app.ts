// Shared state of the console: the client, the signed-in user, the schema, the frame tap and
// the error banner.
import { Livebase, ProblemError } from '@livebase/client';
import { h, clear } from './dom';
import type { Schema } from './schema';

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
