// @livebase/client: REST records, tasks, auth, WebSocket realtime and SSE for livebase.
import { ConnectionError, makeProblem, parseRetryAfter, type ProblemBody } from './errors.js';
import { Realtime, type ChangeEvent, type SubscriptionEvent } from './realtime.js';
import { openSse, type SseEvent, type SseHandle, type SseOptions } from './sse.js';
import { isFinalTask, isTask, type Filter, type ListQuery, type LoginResult, type Page, type Rec, type Task, type User } from './types.js';

export * from './errors.js';
export * from './types.js';
export {
  Realtime, replyProblem,
  type RealtimeStatus, type StatusEvent, type ChangeEvent, type ResyncEvent, type SubscriptionEvent,
  type SubscribeOptions, type Handle, type Subscription, type ObserveQuery, type ObserveDiff, type LiveQuery,
  type ReplyPayload,
} from './realtime.js';
export type { SseEvent, SseHandle, SseOptions } from './sse.js';

export interface LivebaseOptions {
  /** Server origin, e.g. `http://127.0.0.1:8080`. Default: `location.origin` in browsers. */
  url?: string;
  /** Bearer token to start with. */
  token?: string;
  /** fetch `credentials` (browsers: 'include' to send the session cookie cross-origin). */
  credentials?: 'include' | 'same-origin' | 'omit';
  /** A fetch implementation (default: globalThis.fetch). */
  fetch?: typeof fetch;
  /** A WebSocket constructor (default: globalThis.WebSocket; in Node 20 pass `ws`). */
  WebSocket?: any;
  /** REST base path (default `/api`). */
  apiBase?: string;
  /** WebSocket path (default `/ws`). */
  wsPath?: string;
  /** Reconnect backoff of the realtime socket, ms (default 250 .. 10000, with jitter). */
  reconnectMinDelay?: number;
  reconnectMaxDelay?: number;
  /** Timeout of one WebSocket request, including the wait for the connection (ms, default 30000). */
  requestTimeout?: number;
  /** Extra headers sent with every REST request. */
  headers?: Record<string, string>;
}

/** Options of one REST call made with Livebase.request(). */
export interface RequestOptions {
  query?: Record<string, unknown> | URLSearchParams;
  body?: unknown;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** `Prefer` preferences, e.g. ['respond-async', 'wait=5']. */
  prefer?: string[];
  idempotencyKey?: string;
  /** `If-Match`: a version number (sent as `"v{n}"`) or a raw ETag / `*`. */
  ifMatch?: number | string;
  ifNoneMatch?: string;
  /** fetch's redirect mode (default 'follow'). */
  redirect?: RequestRedirect;
  /** Resolve instead of throwing for these statuses (>= 400). */
  allow?: number[];
}

/** A REST answer. */
export interface WireResponse<T = any> {
  status: number;
  data: T;
  headers: Headers;
  /** `Location`, when present. */
  location: string | null;
  /** True when the server replayed a remembered answer (`Idempotent-Replayed: true`). */
  replayed: boolean;
  response: Response;
}

export interface WriteOptions {
  /** Run as a task: `Prefer: respond-async`; the call then returns the Task (202). */
  async?: boolean;
  /** With async: wait up to N s for the synchronous answer (`Prefer: respond-async, wait=N`). */
  wait?: number;
  idempotencyKey?: string;
  /** Optimistic concurrency: the expected version (`If-Match: "v{n}"`). */
  ifMatch?: number | string;
  signal?: AbortSignal;
}

export interface ActionOptions extends WriteOptions {
  /** Record id for a detail action (`/api/c/{id}:name`); absent for a list action (`/api/c:name`). */
  id?: string;
  /** The body (POST) or query parameters (GET). */
  input?: unknown;
  method?: 'GET' | 'POST';
}

export interface WaitOptions {
  /** Called with each new snapshot of the task while it runs (and the final one). */
  onProgress?: (task: Task) => void;
  signal?: AbortSignal;
  /** 'poll': long-poll `GET /api/tasks/{id}` with `Prefer: wait=N` (default); 'socket': follow it on the realtime socket. */
  via?: 'poll' | 'socket';
  /** Long-poll length per request in s (default: 1 with onProgress, else 20; at most 60). */
  pollWait?: number;
  /** Give up after this many ms (rejects with a ConnectionError). */
  timeout?: number;
}

/** What `GET /api/tasks/{id}/result` answered. */
export interface TaskOutcome<T = any> {
  /** False while the task is pending or running (202). */
  ready: boolean;
  /** The status the synchronous request would have had (201 for a create, 200 ...), or 202. */
  status: number;
  data: T;
  location: string | null;
}

function encodeValue(v: unknown): string {
  if (Array.isArray(v)) return v.map(encodeValue).join(',');
  if (v === null) return 'null';
  return String(v);
}

function buildQuery(q: ListQuery | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (!q) return out;
  for (const [k, v] of Object.entries(q.filter ?? {})) if (v !== undefined) out[k] = v;
  if (q.ordering !== undefined) out.ordering = Array.isArray(q.ordering) ? q.ordering.join(',') : q.ordering;
  if (q.limit !== undefined) out.limit = q.limit;
  if (q.offset !== undefined) out.offset = q.offset;
  if (q.fields) out.fields = q.fields.join(',');
  return out;
}

function toPage<T>(data: any): Page<T> {
  const results: T[] = Array.isArray(data?.results) ? data.results : [];
  return { ...data, count: data?.count ?? results.length, results, items: results };
}

function writeHeaders(o: WriteOptions | undefined, base: RequestOptions = {}): RequestOptions {
  const r: RequestOptions = { ...base };
  if (o?.async || o?.wait !== undefined) r.prefer = ['respond-async', ...(o?.wait !== undefined ? [`wait=${o.wait}`] : [])];
  if (o?.idempotencyKey) r.idempotencyKey = o.idempotencyKey;
  if (o?.ifMatch !== undefined) r.ifMatch = o.ifMatch;
  if (o?.signal) r.signal = o.signal;
  return r;
}

function abortError(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new DOMException('The operation was aborted.', 'AbortError');
}

/** One collection's REST resource (`/api/{name}`). */
export class Collection<T extends Rec = Rec> {
  constructor(readonly lb: Livebase, readonly name: string) {}

  private path(id?: string, action?: string): string {
    let p = `${this.lb.apiBase}/${encodeURIComponent(this.name)}`;
    if (id !== undefined) p += `/${encodeURIComponent(id)}`;
    if (action !== undefined) p += `:${encodeURIComponent(action)}`;
    return p;
  }

  /** `GET /api/{c}`: `{count, next, previous, results, items}` (items = results). */
  async list(q: ListQuery & { signal?: AbortSignal } = {}): Promise<Page<T>> {
    const r = await this.lb.request('GET', this.path(), { query: buildQuery(q), ...(q.signal ? { signal: q.signal } : {}) });
    return toPage<T>(r.data);
  }

  /** `GET /api/{c}/{id}`. */
  async get(id: string, opts: { fields?: string[]; signal?: AbortSignal } = {}): Promise<T> {
    const ro: RequestOptions = {};
    if (opts.fields) ro.query = { fields: opts.fields.join(',') };
    if (opts.signal) ro.signal = opts.signal;
    return (await this.lb.request('GET', this.path(id), ro)).data;
  }

  /** `POST /api/{c}`: the record (201), or with `async` the Task (202). */
  async create(data: Partial<T> | Record<string, unknown>, opts?: WriteOptions): Promise<T | Task> {
    return (await this.lb.request('POST', this.path(), writeHeaders(opts, { body: data }))).data;
  }

  /** `PUT /api/{c}/{id}` (full replace of the declared fields). */
  async update(id: string, data: Partial<T> | Record<string, unknown>, opts?: WriteOptions): Promise<T> {
    return (await this.lb.request('PUT', this.path(id), writeHeaders(opts, { body: data }))).data;
  }

  /** `PATCH /api/{c}/{id}` (JSON merge patch). */
  async patch(id: string, data: Partial<T> | Record<string, unknown>, opts?: WriteOptions): Promise<T> {
    return (await this.lb.request('PATCH', this.path(id), writeHeaders(opts, { body: data }))).data;
  }

  /** `DELETE /api/{c}/{id}`: resolves with null (204), or the Task with `async`. */
  async delete(id: string, opts?: WriteOptions): Promise<null | Task> {
    const r = await this.lb.request('DELETE', this.path(id), writeHeaders(opts));
    return r.status === 204 ? null : r.data;
  }

  /**
   * A custom action: `POST /api/{c}/{id}:{name}` with `id`, `/api/{c}:{name}` without. Resolves
   * with the action's result, or the Task (202) for task actions (see isTask()).
   */
  async action<R = any>(name: string, opts: ActionOptions = {}): Promise<R | Task> {
    const method = opts.method ?? 'POST';
    const base: RequestOptions = {};
    if (opts.input !== undefined) {
      if (method === 'GET') base.query = opts.input as Record<string, unknown>;
      else base.body = opts.input;
    }
    return (await this.lb.request(method, this.path(opts.id, name), writeHeaders(opts, base))).data;
  }

  /** Subscribes on the realtime socket (see Realtime.subscribe). */
  subscribe(onEvent: (e: SubscriptionEvent<T>) => void, opts?: Parameters<Realtime['subscribe']>[2]) {
    return this.lb.realtime.subscribe<T>(this.name, onEvent, opts);
  }
}

/** `/api/auth/*`. Login stores the token; the realtime socket reconnects as the new user. */
export class Auth {
  constructor(private readonly lb: Livebase) {}

  async login(username: string, password: string): Promise<LoginResult> {
    const r = await this.lb.request<LoginResult>('POST', `${this.lb.apiBase}/auth/login`, { body: { username, password } });
    this.lb.setToken(r.data.token);
    return r.data;
  }

  /** Revokes the token (the server closes its sockets with 4401); the socket reconnects anonymously. */
  async logout(): Promise<void> {
    try {
      await this.lb.request('POST', `${this.lb.apiBase}/auth/logout`, {});
    } finally {
      this.lb.setToken(null);
    }
  }

  /** The current user; rejects with UnauthorizedError when anonymous. */
  async me(): Promise<User> {
    return (await this.lb.request<User>('GET', `${this.lb.apiBase}/auth/me`)).data;
  }

  /** Signs up (where `[auth] signup = true`); does not log in. */
  async register(username: string, password: string): Promise<User> {
    return (await this.lb.request<User>('POST', `${this.lb.apiBase}/auth/register`, { body: { username, password } })).data;
  }
}

/** `/api/tasks`. */
export class Tasks {
  constructor(private readonly lb: Livebase) {}

  private path(id?: string, rest = ''): string {
    return `${this.lb.apiBase}/tasks${id !== undefined ? '/' + encodeURIComponent(id) : ''}${rest}`;
  }

  /** The caller's tasks, newest first: filters `state`, `kind`, `created__gte`, ... */
  async list(q: ListQuery = {}): Promise<Page<Task>> {
    return toPage<Task>((await this.lb.request('GET', this.path(), { query: buildQuery(q) })).data);
  }

  /**
   * The task resource. A succeeded task answers 303 (to its record or result) with the task as
   * body; the client reads that body instead of following the redirect. `wait` long-polls.
   */
  async get(id: string, opts: { wait?: number; signal?: AbortSignal } = {}): Promise<Task> {
    const ro: RequestOptions = { redirect: 'manual' };
    if (opts.wait !== undefined) ro.prefer = [`wait=${Math.max(0, Math.min(60, Math.round(opts.wait)))}`];
    if (opts.signal) ro.signal = opts.signal;
    const r = await this.lb.request<Task>('GET', this.path(id), ro);
    if (isTask(r.data)) return r.data;
    // Browsers hide a manual redirect's body (opaqueredirect): read the task from the list.
    const page = await this.list({ filter: { id } });
    const t = page.items.find((x) => x.id === id);
    if (!t) throw makeProblem({ status: 404, body: { title: 'Not found', detail: `task ${id}` } });
    return t;
  }

  /** `GET /api/tasks/{id}/result`: the stored answer (ready), or `ready: false` (202). A failed task rejects with its problem; a cancelled one with 410. */
  async result<T = any>(id: string, opts: { signal?: AbortSignal } = {}): Promise<TaskOutcome<T>> {
    const r = await this.lb.request<T>('GET', this.path(id, '/result'), { redirect: 'manual', ...(opts.signal ? { signal: opts.signal } : {}) });
    return { ready: r.status !== 202, status: r.status, data: r.data, location: r.location };
  }

  /** `DELETE /api/tasks/{id}`: cancels (pending: at once; running: requested). 409 when finished. */
  async cancel(id: string): Promise<Task> {
    return (await this.lb.request<Task>('DELETE', this.path(id))).data;
  }

  /** Submits a task of a kind bound to an `[endpoints.*]` entry, over the socket (`tasks` `submit`). */
  async submit(kind: string, input: unknown = {}): Promise<Task> {
    return this.lb.realtime.request<Task>('tasks', 'submit', { data: { kind, input } });
  }

  /** Follows a task until it is finished and resolves with the final task (state succeeded, failed or cancelled). */
  async wait(id: string, opts: WaitOptions = {}): Promise<Task> {
    if (opts.timeout === undefined) return opts.via === 'socket' ? this.waitSocket(id, opts) : this.waitPoll(id, opts);
    // A timeout aborts like the caller's signal would, so the poll or the subscription ends too.
    const ctrl = new AbortController();
    const outer = opts.signal;
    const onOuter = () => ctrl.abort(outer!.reason);
    if (outer?.aborted) ctrl.abort(outer.reason);
    else outer?.addEventListener('abort', onOuter, { once: true });
    const t = setTimeout(() => ctrl.abort(new ConnectionError(`task ${id} not finished within ${opts.timeout} ms`)), opts.timeout);
    const inner: WaitOptions = { ...opts, signal: ctrl.signal };
    try {
      return await (opts.via === 'socket' ? this.waitSocket(id, inner) : this.waitPoll(id, inner));
    } finally {
      clearTimeout(t);
      outer?.removeEventListener('abort', onOuter);
    }
  }

  private async waitPoll(id: string, opts: WaitOptions): Promise<Task> {
    const n = opts.pollWait ?? (opts.onProgress ? 1 : 20);
    let last = '';
    for (;;) {
      if (opts.signal?.aborted) throw abortError(opts.signal);
      const ro: { wait: number; signal?: AbortSignal } = { wait: n };
      if (opts.signal) ro.signal = opts.signal;
      const task = await this.get(id, ro);
      const key = JSON.stringify([task.state, task.progress, task.message, task.steps, task.attempt]);
      if (key !== last) {
        last = key;
        opts.onProgress?.(task);
      }
      if (isFinalTask(task)) return task;
    }
  }

  private async waitSocket(id: string, opts: WaitOptions): Promise<Task> {
    const rt = this.lb.realtime;
    return new Promise<Task>((resolve, reject) => {
      let done = false;
      let sub: { close(): Promise<void> } | null = null;
      let last = '';
      const see = (task: Task) => {
        if (done || !task || task.id !== id) return;
        const key = JSON.stringify([task.state, task.progress, task.message, task.steps, task.attempt]);
        if (key !== last) {
          last = key;
          try { opts.onProgress?.(task); } catch { /* the caller's problem */ }
        }
        if (isFinalTask(task)) finish(null, task);
      };
      const finish = (err: unknown, task?: Task) => {
        if (done) return;
        done = true;
        opts.signal?.removeEventListener('abort', onAbort);
        void sub?.close();
        if (err) reject(err);
        else resolve(task!);
      };
      const onAbort = () => finish(abortError(opts.signal!));
      if (opts.signal?.aborted) return onAbort();
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      rt.subscribe<Task>('tasks', (e) => {
        if (e.action === 'resync') { for (const t of e.items) see(t); return; }
        see((e as ChangeEvent<Task>).data);
      }, { pk: id }).then(async (s) => {
        sub = s;
        if (done) { void s.close(); return; }
        // The task may have finished before the subscription existed: read it once.
        try { see(await rt.request<Task>('tasks', 'retrieve', { pk: id })); } catch (e) { finish(e); }
      }, (e) => finish(e));
    });
  }
}

/** The client. */
export class Livebase {
  readonly url: string;
  readonly apiBase: string;
  readonly wsPath: string;
  readonly credentials: 'include' | 'same-origin' | 'omit' | undefined;
  readonly auth: Auth;
  readonly tasks: Tasks;
  readonly realtime: Realtime;
  private _token: string | null;
  private readonly _fetch: typeof fetch;
  private readonly extraHeaders: Record<string, string>;
  private readonly collections = new Map<string, Collection<any>>();

  constructor(opts: LivebaseOptions = {}) {
    const origin = opts.url ?? (globalThis as any).location?.origin;
    if (!origin) throw new Error('Livebase: `url` is required outside a browser');
    this.url = String(origin).replace(/\/+$/, '');
    this.apiBase = '/' + (opts.apiBase ?? '/api').replace(/^\/+|\/+$/g, '');
    if (this.apiBase === '/') this.apiBase = '';
    this.wsPath = opts.wsPath ?? '/ws';
    this.credentials = opts.credentials;
    this._token = opts.token ?? null;
    const f = opts.fetch ?? globalThis.fetch;
    if (!f) throw new Error('Livebase: no fetch implementation');
    this._fetch = opts.fetch ? opts.fetch : f.bind(globalThis);
    this.extraHeaders = { ...(opts.headers ?? {}) };
    this.auth = new Auth(this);
    this.tasks = new Tasks(this);
    const wsUrl = this.url.replace(/^http/i, 'ws') + (this.wsPath.startsWith('/') ? this.wsPath : '/' + this.wsPath);
    const rtOpts: ConstructorParameters<typeof Realtime>[0] = {
      url: wsUrl,
      WebSocket: opts.WebSocket ?? (globalThis as any).WebSocket,
      protocols: 'livebase.v1',
      getToken: () => this._token,
    };
    if (opts.reconnectMinDelay !== undefined) rtOpts.minDelay = opts.reconnectMinDelay;
    if (opts.reconnectMaxDelay !== undefined) rtOpts.maxDelay = opts.reconnectMaxDelay;
    if (opts.requestTimeout !== undefined) rtOpts.requestTimeout = opts.requestTimeout;
    this.realtime = new Realtime(rtOpts);
  }

  /** The current bearer token, or null. */
  get token(): string | null {
    return this._token;
  }

  /** Sets (or clears) the bearer token; an active realtime socket reconnects with it. */
  setToken(token: string | null): void {
    if (token === this._token) return;
    this._token = token;
    if (this.realtime.active) this.realtime.reconnect();
  }

  /** The collection's REST resource. */
  collection<T extends Rec = Rec>(name: string): Collection<T> {
    let c = this.collections.get(name);
    if (!c) {
      c = new Collection<T>(this, name);
      this.collections.set(name, c);
    }
    return c as Collection<T>;
  }

  /**
   * An `[endpoints.*]` entry: `name` is its path under the API base (`double` -> `/api/double`)
   * or an absolute path. GET sends `params` as the query, POST as the body. Endpoints run as
   * tasks: resolves with the result when the server answers synchronously (with `wait`, when
   * it finishes in time), else with the Task (202, see isTask()).
   */
  async endpoint<R = any>(name: string, params: Record<string, unknown> = {},
    opts: { method?: 'GET' | 'POST'; wait?: number; idempotencyKey?: string; signal?: AbortSignal } = {}): Promise<R | Task> {
    const path = name.startsWith('/') ? name : `${this.apiBase}/${name}`;
    const method = opts.method ?? 'GET';
    const ro: RequestOptions = method === 'GET' ? { query: params } : { body: params };
    if (opts.wait !== undefined) ro.prefer = [`wait=${opts.wait}`];
    if (opts.idempotencyKey) ro.idempotencyKey = opts.idempotencyKey;
    if (opts.signal) ro.signal = opts.signal;
    return (await this.request(method, path, ro)).data;
  }

  /** The headers every request carries (Authorization when there is a token). */
  headers(): Record<string, string> {
    const h: Record<string, string> = { ...this.extraHeaders };
    if (this._token) h.Authorization = `Bearer ${this._token}`;
    return h;
  }

  /** Absolute URL of a server path (`/api/cars`) with an optional query. */
  urlFor(path: string, query?: Record<string, unknown> | URLSearchParams): string {
    let u = /^https?:\/\//i.test(path) ? path : this.url + (path.startsWith('/') ? path : '/' + path);
    if (query) {
      const qs = query instanceof URLSearchParams ? query : new URLSearchParams();
      if (!(query instanceof URLSearchParams)) {
        for (const [k, v] of Object.entries(query)) if (v !== undefined) qs.append(k, encodeValue(v));
      }
      const s = qs.toString();
      if (s) u += (u.includes('?') ? '&' : '?') + s;
    }
    return u;
  }

  /**
   * A REST call. `path` is a server path (`/api/cars`). Resolves with the status, parsed body
   * and headers; rejects with a ProblemError (by status) for an error answer.
   */
  async request<T = any>(method: string, path: string, opts: RequestOptions = {}): Promise<WireResponse<T>> {
    const headers: Record<string, string> = { Accept: 'application/json', ...this.headers(), ...(opts.headers ?? {}) };
    const init: RequestInit = { method, headers };
    if (opts.body !== undefined) {
      headers['Content-Type'] ??= 'application/json';
      init.body = JSON.stringify(opts.body);
    }
    if (opts.prefer?.length) headers.Prefer = opts.prefer.join(', ');
    if (opts.idempotencyKey) headers['Idempotency-Key'] = opts.idempotencyKey;
    if (opts.ifMatch !== undefined) headers['If-Match'] = typeof opts.ifMatch === 'number' ? `"v${opts.ifMatch}"` : opts.ifMatch;
    if (opts.ifNoneMatch !== undefined) headers['If-None-Match'] = opts.ifNoneMatch;
    if (opts.signal) init.signal = opts.signal;
    if (opts.redirect) init.redirect = opts.redirect;
    if (this.credentials) init.credentials = this.credentials;
    const res = await this._fetch(this.urlFor(path, opts.query), init);
    let data: any = null;
    const text = res.type === 'opaqueredirect' ? '' : await res.text();
    if (text) {
      try { data = JSON.parse(text); } catch { data = text; }
    }
    if (res.status >= 400 && !opts.allow?.includes(res.status)) {
      const body: ProblemBody = data && typeof data === 'object' ? data : { title: res.statusText || `HTTP ${res.status}`, detail: typeof data === 'string' ? data : '' };
      const retryAfter = parseRetryAfter(res.headers.get('Retry-After'));
      throw makeProblem({ status: res.status, body, requestId: res.headers.get('X-Request-Id'), ...(retryAfter !== undefined ? { retryAfter } : {}) });
    }
    return {
      status: res.status, data: data as T, headers: res.headers, location: res.headers.get('Location'),
      replayed: res.headers.get('Idempotent-Replayed') === 'true', response: res,
    };
  }

  /**
   * Server-Sent Events over fetch streaming. `target`: a collection name (its change feed,
   * `/api/{c}/events`, filters in `opts.filter`), `tasks/<id>` (the task's snapshots until it
   * is finished), or any other path under the API base. Resumes with Last-Event-ID after a
   * drop; a 410 (history gone) is reported as an event `resync`.
   */
  sse<T = any>(target: string, onEvent: (e: SseEvent<T>) => void, opts: SseOptions = {}): SseHandle {
    const clean = target.replace(/^\/+/, '');
    const isTask = /^tasks\/[^/]+\/?$/.test(clean);
    let path: string;
    if (clean.startsWith(this.apiBase.replace(/^\//, '') + '/') && this.apiBase) path = '/' + clean;
    else if (!clean.includes('/')) path = `${this.apiBase}/${clean}/events`;
    else path = `${this.apiBase}/${clean}`;
    const url = this.urlFor(path, opts.filter as Record<string, unknown> | undefined);
    const host = { fetch: this._fetch, headers: () => this.headers(), credentials: this.credentials };
    return openSse(host, url, isTask, onEvent as (e: SseEvent) => void, opts);
  }

  /** Closes the realtime socket (and stops its reconnects). */
  close(): void {
    this.realtime.close();
  }
}

export type { Filter, ListQuery, Page, Rec, Task, User, LoginResult };
export default Livebase;
