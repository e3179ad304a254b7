// One multiplexed WebSocket (channels-api envelope, spec/realtime.md): requests, subscriptions
// with resume, live queries, automatic reconnect.
import { ConnectionError, ProblemError, makeProblem, type ProblemBody } from './errors.js';
import type { Filter, Rec } from './types.js';

export type RealtimeStatus = 'connecting' | 'open' | 'closed';

export interface StatusEvent {
  status: RealtimeStatus;
  /** Close code of the socket that just closed (1001, 4008, 4401, ...), when closing. */
  code?: number;
  reason?: string;
  /** Milliseconds until the next connection attempt, when one is scheduled. */
  reconnectIn?: number;
  /** The socket's id from `hello` (REST `?observe=` uses it), once open. */
  subscriber?: string | null;
}

/** A change event delivered to a subscription handler. */
export interface ChangeEvent<T = Rec> {
  action: 'create' | 'update' | 'delete';
  pk: string;
  data: T;
  seq: number;
  subscription: string;
  stream: string;
}

/**
 * Sent to a subscription handler when the history no longer reaches back to the last seq it
 * saw (410 on resume): events were lost; `items` is the current state (a list of the
 * subscription's filter, or the one record of a pk subscription), and live events follow.
 */
export interface ResyncEvent<T = Rec> {
  action: 'resync';
  stream: string;
  seq: number;
  items: T[];
  count?: number;
}

export type SubscriptionEvent<T = Rec> = ChangeEvent<T> | ResyncEvent<T>;

export interface SubscribeOptions {
  /** One record (or, on the `tasks` stream, one task). */
  pk?: string;
  filter?: Filter;
  actions?: Array<'create' | 'update' | 'delete'>;
  /** Start by replaying every change after this seq. */
  since?: number;
  /** Page size of the re-list sent with a `resync` (default 500). */
  resyncLimit?: number;
}

export interface Handle {
  /** Stops it (unsubscribe / unobserve); it is not restored on reconnect. */
  close(): Promise<void>;
  readonly closed: boolean;
}

export interface Subscription extends Handle {
  readonly stream: string;
  /** The server's subscription id on the current socket (changes on reconnect). */
  readonly id: string | null;
  /** The last seq this subscription has seen (resume point). */
  readonly lastSeq: number | null;
}

export interface ObserveQuery {
  filter?: Filter;
  ordering?: string | string[];
  limit?: number;
  offset?: number;
}

export type ObserveDiff<T = Rec> =
  | { msg: 'init' | 'reset'; seq: number; count?: number }
  | { msg: 'added' | 'changed'; order: number; pk: string; item: T; seq: number }
  | { msg: 'removed'; order: number; pk: string; seq: number }
  | { msg: 'moved'; from: number; order: number; pk: string; seq: number };

export interface LiveQuery<T = Rec> extends Handle {
  readonly stream: string;
  readonly id: string | null;
  /** The current window, kept up to date by the diffs. */
  readonly items: T[];
  readonly seq: number | null;
}

export interface RealtimeOptions {
  url: string; // ws:// or wss:// URL of the socket
  WebSocket: any;
  protocols?: string | string[];
  getToken: () => string | null;
  /** Reconnect backoff: first delay (ms), cap (ms). */
  minDelay?: number;
  maxDelay?: number;
  /** Per-request timeout, including the wait for the connection (ms). */
  requestTimeout?: number;
}

export interface ReplyPayload {
  action: string;
  request_id: unknown;
  response_status: number;
  data: any;
  errors: unknown[];
  retry_after?: number;
  [key: string]: unknown;
}

interface Pending {
  resolve: (p: ReplyPayload) => void;
  reject: (e: Error) => void;
  timer: ReturnType<typeof setTimeout> | undefined;
  /** Runs synchronously when the reply is read, before any later frame is dispatched. */
  onReply?: (p: ReplyPayload) => void;
}

type Listener = (arg: any) => void;

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (v: T) => void;
  reject: (e: unknown) => void;
  settled: boolean;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const d = { settled: false } as Deferred<T>;
  d.promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  d.resolve = (v) => { if (!d.settled) { d.settled = true; resolve(v); } };
  d.reject = (e) => { if (!d.settled) { d.settled = true; reject(e); } };
  d.promise.catch(() => {}); // rejections are reported to whoever awaits; never unhandled
  return d;
}

const WS_OPEN = 1;

/** Builds a ProblemError from a WebSocket reply (`response_status` >= 400). */
export function replyProblem(p: ReplyPayload): ProblemError {
  const errors = Array.isArray(p.errors) ? p.errors : [];
  const strings = errors.filter((e): e is string => typeof e === 'string');
  const fields = errors.find((e) => e && typeof e === 'object') as Record<string, string[]> | undefined;
  const body: ProblemBody = { status: p.response_status, title: strings[0] ?? `Error ${p.response_status}` };
  if (strings.length > 1) body.detail = strings.slice(1).join('; ');
  else if (strings[0]) body.detail = strings[0];
  if (fields) {
    body.errors = fields;
    body.type = '/problems/validation';
  }
  const init: { status: number; body: ProblemBody; source: 'ws'; retryAfter?: number } =
    { status: p.response_status, body, source: 'ws' };
  if (typeof p.retry_after === 'number') init.retryAfter = p.retry_after;
  return makeProblem(init);
}

function orderingParam(o: string | string[] | undefined): string | undefined {
  if (o === undefined) return undefined;
  return Array.isArray(o) ? o.join(',') : o;
}

class SubscriptionImpl implements Subscription {
  id: string | null = null;
  lastSeq: number | null;
  closed = false;
  gen = -1; // socket generation the subscribe was sent on
  readonly first = deferred<void>();
  constructor(
    readonly rt: Realtime,
    readonly stream: string,
    readonly handler: (e: SubscriptionEvent) => void,
    readonly opts: SubscribeOptions,
  ) {
    this.lastSeq = opts.since ?? null;
  }
  close(): Promise<void> {
    return this.rt._closeSubscription(this);
  }
}

class LiveQueryImpl implements LiveQuery {
  id: string | null = null;
  items: Rec[] = [];
  seq: number | null = null;
  closed = false;
  gen = -1;
  readonly first = deferred<void>();
  constructor(
    readonly rt: Realtime,
    readonly stream: string,
    readonly query: ObserveQuery,
    readonly onChange: (items: Rec[], diff: ObserveDiff) => void,
  ) {}
  close(): Promise<void> {
    return this.rt._closeLiveQuery(this);
  }
}

/**
 * The realtime socket. Connects lazily (first request/subscribe/observe, or connect()),
 * authenticates with the client's token by an `auth` `login` message, resumes every
 * subscription with `since` and re-establishes every live query after a reconnect.
 */
export class Realtime {
  status: RealtimeStatus = 'closed';
  /** The socket id from `hello`. */
  subscriber: string | null = null;
  /** The socket's user (from `hello` or the login reply), or null. */
  user: any = null;
  /** Close code that stopped automatic reconnects (4401, 1008), if any. */
  stoppedBy: number | null = null;

  private readonly o: RealtimeOptions;
  private ws: any = null;
  private gen = 0;
  private want = false;
  private attempt = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private nextId = 1;
  private readonly pending = new Map<string, Pending>();
  private readonly subs = new Set<SubscriptionImpl>();
  private readonly lives = new Set<LiveQueryImpl>();
  private readonly bySub = new Map<string, SubscriptionImpl>();
  private readonly byObs = new Map<string, LiveQueryImpl>();
  private ready = deferred<void>();
  private readonly rawQueue: string[] = [];
  private readonly listeners: Record<'status' | 'message' | 'error', Set<Listener>> = {
    status: new Set(), message: new Set(), error: new Set(),
  };

  constructor(o: RealtimeOptions) {
    this.o = { minDelay: 250, maxDelay: 10_000, requestTimeout: 30_000, ...o };
  }

  /** Listens to 'status' (StatusEvent), 'message' (every frame, parsed) or 'error'. */
  on(event: 'status', cb: (e: StatusEvent) => void): () => void;
  on(event: 'message', cb: (frame: any) => void): () => void;
  on(event: 'error', cb: (err: Error) => void): () => void;
  on(event: 'status' | 'message' | 'error', cb: Listener): () => void {
    this.listeners[event].add(cb);
    return () => { this.listeners[event].delete(cb); };
  }

  private emit(event: 'status' | 'message' | 'error', arg: unknown): void {
    for (const cb of [...this.listeners[event]]) {
      try { cb(arg); } catch (e) { if (event !== 'error') this.emit('error', e); }
    }
  }

  private setStatus(status: RealtimeStatus, extra: Omit<StatusEvent, 'status'> = {}): void {
    this.status = status;
    this.emit('status', { status, ...extra });
  }

  /** Opens the socket (if needed) and resolves once it is open, authenticated and resumed. */
  connect(): Promise<void> {
    this.want = true;
    this.stoppedBy = null;
    if (this.status === 'open') return Promise.resolve();
    if (this.ready.settled) this.ready = deferred<void>();
    if (!this.ws && this.timer === undefined) this.open();
    else if (this.timer !== undefined) { // waiting on backoff: try now
      clearTimeout(this.timer);
      this.timer = undefined;
      this.open();
    }
    return this.ready.promise;
  }

  /**
   * Closes the socket and stops reconnecting. Subscriptions and live queries stay registered
   * and are resumed by the next connect(); close their handles to drop them.
   */
  close(): void {
    this.want = false;
    if (this.timer !== undefined) { clearTimeout(this.timer); this.timer = undefined; }
    const ws = this.ws;
    this.dropSocket(new ConnectionError('realtime closed by the client'));
    if (ws) { try { ws.close(1000, 'client closed'); } catch { /* already closed */ } }
    this.ready.reject(new ConnectionError('realtime closed by the client'));
    if (this.status !== 'closed') this.setStatus('closed', { code: 1000, reason: 'client closed' });
  }

  /** Drops the current socket and connects again at once (used after login/logout). */
  reconnect(): void {
    const ws = this.ws;
    if (!ws && !this.want) return;
    this.dropSocket(new ConnectionError('reconnecting'));
    if (ws) { try { ws.close(1000, 'reconnecting'); } catch { /* ignore */ } }
    if (this.timer !== undefined) { clearTimeout(this.timer); this.timer = undefined; }
    this.want = true;
    this.stoppedBy = null;
    if (this.ready.settled) this.ready = deferred<void>();
    this.open();
  }

  /** True when someone uses the socket (it is open, connecting, or has handles to keep). */
  get active(): boolean {
    return this.want || this.subs.size > 0 || this.lives.size > 0;
  }

  /** Test/debug hook: the current underlying socket object (or null). */
  get socket(): any {
    return this.ws;
  }

  private open(): void {
    const Ctor = this.o.WebSocket;
    if (!Ctor) {
      const err = new ConnectionError('no WebSocket implementation: pass the `WebSocket` option (e.g. the `ws` package in Node 20)');
      this.want = false;
      this.ready.reject(err);
      this.emit('error', err);
      return;
    }
    this.gen++;
    const gen = this.gen;
    this.setStatus('connecting');
    let ws: any;
    try {
      ws = this.o.protocols === undefined ? new Ctor(this.o.url) : new Ctor(this.o.url, this.o.protocols);
    } catch (e) {
      this.emit('error', e);
      this.scheduleReconnect(1006, String(e));
      return;
    }
    this.ws = ws;
    ws.addEventListener('message', (ev: any) => {
      if (this.ws !== ws) return;
      let text: string;
      if (typeof ev.data === 'string') text = ev.data;
      else {
        try { text = new TextDecoder().decode(ev.data); } catch { return; }
      }
      let frame: any;
      try { frame = JSON.parse(text); } catch {
        this.emit('error', new Error('realtime: a frame that is not JSON'));
        return;
      }
      this.emit('message', frame);
      this.dispatch(frame, ws, gen);
    });
    ws.addEventListener('error', (ev: any) => {
      if (this.ws !== ws) return;
      this.emit('error', ev?.error instanceof Error ? ev.error : new ConnectionError(`realtime: socket error${ev?.message ? ': ' + ev.message : ''}`));
    });
    ws.addEventListener('close', (ev: any) => {
      if (this.ws !== ws) return;
      const code: number = typeof ev?.code === 'number' ? ev.code : 1006;
      const reason: string = ev?.reason ? String(ev.reason) : '';
      this.dropSocket(new ConnectionError(`realtime socket closed (${code}${reason ? ' ' + reason : ''})`, code));
      if (!this.want) {
        this.setStatus('closed', { code, reason });
        return;
      }
      if (code === 4401 || code === 1008) {
        // Credentials no longer valid / origin refused: reconnecting would loop. Stop until
        // connect() or a login asks again.
        this.want = false;
        this.stoppedBy = code;
        const err = makeProblem({
          status: code === 4401 ? 401 : 403, source: 'ws',
          body: { title: code === 4401 ? 'Credentials no longer valid' : 'Origin not allowed', detail: reason },
        });
        this.ready.reject(err);
        this.setStatus('closed', { code, reason });
        this.emit('error', err);
        return;
      }
      this.scheduleReconnect(code, reason);
    });
  }

  /** Forgets the current socket: pending requests fail, server-side ids are void. */
  private dropSocket(err: Error): void {
    this.ws = null;
    this.subscriber = null;
    this.bySub.clear();
    this.byObs.clear();
    for (const s of this.subs) s.id = null;
    for (const l of this.lives) l.id = null;
    const pend = [...this.pending.values()];
    this.pending.clear();
    for (const p of pend) {
      if (p.timer) clearTimeout(p.timer);
      p.reject(err);
    }
  }

  private scheduleReconnect(code: number, reason: string): void {
    const base = code === 4429 ? Math.max(5000, this.o.minDelay!) : this.o.minDelay!;
    const cap = this.o.maxDelay!;
    const exp = Math.min(cap, base * 2 ** Math.min(this.attempt, 16));
    const delay = Math.round(exp / 2 + Math.random() * (exp / 2)); // "equal jitter"
    this.attempt++;
    this.setStatus('closed', { code, reason, reconnectIn: delay });
    if (this.ready.settled) this.ready = deferred<void>();
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.want && !this.ws) this.open();
    }, delay);
  }

  private dispatch(frame: any, ws: any, gen: number): void {
    const payload = frame && typeof frame === 'object' ? frame.payload : undefined;
    if (!payload || typeof payload !== 'object') return;
    const stream: string = frame.stream;
    if (stream === 'session' && payload.action === 'hello') {
      this.subscriber = payload.data?.subscriber ?? null;
      this.user = payload.data?.user ?? null;
      void this.establish(ws, gen);
      return;
    }
    if (payload.response_status !== undefined && payload.request_id !== undefined && payload.request_id !== null) {
      const key = String(payload.request_id);
      const p = this.pending.get(key);
      if (p) {
        this.pending.delete(key);
        if (p.timer) clearTimeout(p.timer);
        try { p.onReply?.(payload); } catch (e) { this.emit('error', e); }
        p.resolve(payload);
        return;
      }
    }
    if (payload.action === 'observe' && typeof payload.observer === 'string' && payload.response_status === undefined) {
      const live = this.byObs.get(payload.observer);
      if (live && !live.closed) this.applyDiff(live, payload);
      return;
    }
    if (typeof payload.subscription === 'string' && payload.response_status === undefined) {
      const sub = this.bySub.get(payload.subscription);
      if (!sub || sub.closed) return;
      const seq = typeof payload.seq === 'number' ? payload.seq : null;
      if (seq !== null && sub.lastSeq !== null && seq <= sub.lastSeq) return; // already seen
      if (seq !== null) sub.lastSeq = seq;
      this.deliver(sub, { action: payload.action, pk: payload.pk, data: payload.data, seq: payload.seq,
        subscription: payload.subscription, stream });
    }
  }

  private deliver(sub: SubscriptionImpl, ev: SubscriptionEvent): void {
    try { sub.handler(ev); } catch (e) { this.emit('error', e); }
  }

  private applyDiff(live: LiveQueryImpl, payload: any): void {
    const d = payload.data ?? {};
    const items = live.items;
    switch (d.msg) {
      case 'removed': items.splice(d.order, 1); break;
      case 'added': items.splice(d.order, 0, d.item); break;
      case 'changed': items[d.order] = d.item; break;
      case 'moved': {
        const [it] = items.splice(d.from, 1);
        items.splice(d.order, 0, it);
        break;
      }
      default: return;
    }
    live.seq = payload.seq ?? live.seq;
    const diff = { ...d, seq: payload.seq } as ObserveDiff;
    try { live.onChange(items, diff); } catch (e) { this.emit('error', e); }
  }

  /** After `hello`: log in with the token, resume subscriptions and live queries. */
  private async establish(ws: any, gen: number): Promise<void> {
    const token = this.o.getToken();
    if (token) {
      try {
        const r = await this.rawRequest('auth', 'login', { data: { token } }, true);
        if (r.response_status >= 400) this.emit('error', replyProblem(r));
        else this.user = r.data?.user ?? this.user;
      } catch (e) {
        if (this.ws === ws) this.emit('error', e);
        return;
      }
    }
    // Resume what was registered before this socket (and anything added meanwhile).
    for (;;) {
      if (this.ws !== ws) return;
      const todo: Promise<unknown>[] = [];
      for (const s of this.subs) if (s.gen !== gen && !s.closed) todo.push(this.doSubscribe(s));
      for (const l of this.lives) if (l.gen !== gen && !l.closed) todo.push(this.doObserve(l));
      if (todo.length === 0) break;
      await Promise.allSettled(todo);
    }
    if (this.ws !== ws) return;
    this.attempt = 0;
    this.setStatus('open', { subscriber: this.subscriber });
    this.ready.resolve();
    while (this.rawQueue.length && this.ws === ws) ws.send(this.rawQueue.shift());
  }

  private isOpenSocket(): boolean {
    return !!this.ws && this.ws.readyState === WS_OPEN;
  }

  /**
   * Sends one request frame and resolves with the reply payload whatever its status.
   * `internal` requests skip waiting for `open` (used while establishing).
   */
  private async rawRequest(stream: string, action: string, fields: Record<string, unknown>, internal = false,
    onReply?: (p: ReplyPayload) => void): Promise<ReplyPayload> {
    const timeout = this.o.requestTimeout!;
    if (!internal && this.status !== 'open') {
      const connected = this.connect();
      let t: ReturnType<typeof setTimeout> | undefined;
      const timer = new Promise<never>((_, rej) => {
        t = setTimeout(() => rej(new ConnectionError(`realtime: not connected after ${timeout} ms`)), timeout);
      });
      try { await Promise.race([connected, timer]); } finally { clearTimeout(t); }
    }
    const ws = this.ws;
    if (!ws || ws.readyState !== WS_OPEN) throw new ConnectionError('realtime socket is not open');
    const id = `lb-${this.nextId++}`;
    return new Promise<ReplyPayload>((resolve, reject) => {
      const p: Pending = { resolve, reject, timer: undefined };
      if (onReply) p.onReply = onReply;
      p.timer = setTimeout(() => {
        if (this.pending.get(id) === p) {
          this.pending.delete(id);
          reject(new ConnectionError(`realtime: no reply to ${stream}/${action} within ${timeout} ms`));
        }
      }, timeout);
      this.pending.set(id, p);
      ws.send(JSON.stringify({ stream, payload: { ...fields, action, request_id: id } }));
    });
  }

  /**
   * A request over the socket (CRUD, custom actions, tasks/auth streams). `payload` holds
   * `pk`, `data` and any other payload member. Resolves with the reply's `data`; a reply with
   * `response_status` >= 400 rejects with a ProblemError. Use requestRaw() for the whole reply.
   */
  async request<T = any>(stream: string, action: string, payload: Record<string, unknown> = {}): Promise<T> {
    const r = await this.requestRaw(stream, action, payload);
    if (r.response_status >= 400) throw replyProblem(r);
    return r.data as T;
  }

  /** Like request(), but resolves with the reply payload (`response_status`, `data`, `errors`). */
  requestRaw(stream: string, action: string, payload: Record<string, unknown> = {}): Promise<ReplyPayload> {
    const { action: _a, request_id: _r, ...rest } = payload;
    return this.rawRequest(stream, action, rest);
  }

  /**
   * Sends a raw envelope (`{stream, payload}`) as is; its reply arrives through on('message').
   * Connects if needed; frames sent before the socket is open are queued.
   */
  send(raw: unknown): void {
    const text = typeof raw === 'string' ? raw : JSON.stringify(raw);
    if (this.status === 'open' && this.isOpenSocket()) this.ws.send(text);
    else {
      this.rawQueue.push(text);
      void this.connect().catch(() => {});
    }
  }

  /** Subscribes to changes of a collection, a record (`pk`) or a task (`tasks`, `pk`). */
  async subscribe<T = Rec>(stream: string, onEvent: (e: SubscriptionEvent<T>) => void,
    opts: SubscribeOptions = {}): Promise<Subscription> {
    const sub = new SubscriptionImpl(this, stream, onEvent as (e: SubscriptionEvent) => void, opts);
    this.subs.add(sub);
    void this.connect().catch((e) => sub.first.reject(e));
    if (this.status === 'open' && sub.gen !== this.gen) void this.doSubscribe(sub);
    try {
      await sub.first.promise;
    } catch (e) {
      this.subs.delete(sub);
      sub.closed = true;
      throw e;
    }
    return sub;
  }

  private subscribeData(sub: SubscriptionImpl, since: number | null): Record<string, unknown> {
    const data: Record<string, unknown> = {};
    if (sub.opts.filter) data.filter = sub.opts.filter;
    if (sub.opts.actions) data.actions = sub.opts.actions;
    if (since !== null) data.since = since;
    return data;
  }

  private async doSubscribe(sub: SubscriptionImpl): Promise<void> {
    const gen = this.gen;
    sub.gen = gen;
    const fields = (since: number | null): Record<string, unknown> => {
      const f: Record<string, unknown> = { data: this.subscribeData(sub, since) };
      if (sub.opts.pk !== undefined) f.pk = sub.opts.pk;
      return f;
    };
    const onReply = (p: ReplyPayload, since: number | null) => {
      if (p.response_status >= 400 || sub.closed || this.gen !== gen) return;
      sub.id = p.data?.subscription ?? null;
      if (sub.id) this.bySub.set(sub.id, sub);
      // Without `since` the reply's seq is the resume point; with it, replayed events
      // (seq in (since, reply.seq]) are still to come.
      if (since === null && typeof p.data?.seq === 'number') sub.lastSeq = p.data.seq;
    };
    let r: ReplyPayload;
    const since = sub.lastSeq;
    try {
      r = await this.rawRequest(sub.stream, 'subscribe', fields(since), true, (p) => onReply(p, since));
    } catch (e) {
      return; // socket dropped: the next establish() retries
    }
    if (sub.closed) { if (r.response_status < 400) void this.unsubscribeOnServer(sub.stream, r.data?.subscription); return; }
    if (r.response_status === 410 && since !== null) {
      // History gone: subscribe afresh, then tell the handler what is there now.
      sub.lastSeq = null;
      try {
        r = await this.rawRequest(sub.stream, 'subscribe', fields(null), true, (p) => onReply(p, null));
      } catch { return; }
      if (r.response_status < 400) {
        const resync: ResyncEvent = { action: 'resync', stream: sub.stream, seq: r.data?.seq ?? 0, items: [] };
        try {
          if (sub.opts.pk !== undefined) {
            const one = await this.rawRequest(sub.stream, 'retrieve', { pk: sub.opts.pk }, true);
            if (one.response_status < 300) resync.items = [one.data];
          } else {
            const data: Record<string, unknown> = { limit: sub.opts.resyncLimit ?? 500 };
            if (sub.opts.filter) data.filter = sub.opts.filter;
            const page = await this.rawRequest(sub.stream, 'list', { data }, true);
            if (page.response_status < 300) {
              resync.items = page.data?.results ?? [];
              resync.count = page.data?.count;
            }
          }
        } catch { /* the socket dropped; the next resume starts over */ }
        if (!sub.closed) this.deliver(sub, resync);
      }
    }
    if (r.response_status >= 400) {
      const err = replyProblem(r);
      if (!sub.first.settled) sub.first.reject(err);
      else this.emit('error', err);
      return;
    }
    sub.first.resolve();
  }

  private async unsubscribeOnServer(stream: string, id: string | undefined): Promise<void> {
    if (!id || !this.isOpenSocket()) return;
    try { await this.rawRequest(stream, 'unsubscribe', { data: { subscription: id } }, true); } catch { /* gone */ }
  }

  /** @internal */
  async _closeSubscription(sub: SubscriptionImpl): Promise<void> {
    if (sub.closed) return;
    sub.closed = true;
    this.subs.delete(sub);
    const id = sub.id;
    if (id) this.bySub.delete(id);
    sub.first.reject(new ConnectionError('subscription closed'));
    await this.unsubscribeOnServer(sub.stream, id ?? undefined);
  }

  /**
   * A live query: `onChange(items, diff)` is called with the initial window (`msg: 'init'`),
   * after every diff, and with a fresh window after a reconnect (`msg: 'reset'`).
   */
  async observe<T = Rec>(stream: string, query: ObserveQuery,
    onChange: (items: T[], diff: ObserveDiff<T>) => void): Promise<LiveQuery<T>> {
    const live = new LiveQueryImpl(this, stream, query, onChange as unknown as (items: Rec[], diff: ObserveDiff) => void);
    this.lives.add(live);
    void this.connect().catch((e) => live.first.reject(e));
    if (this.status === 'open' && live.gen !== this.gen) void this.doObserve(live);
    try {
      await live.first.promise;
    } catch (e) {
      this.lives.delete(live);
      live.closed = true;
      throw e;
    }
    return live as unknown as LiveQuery<T>;
  }

  private async doObserve(live: LiveQueryImpl): Promise<void> {
    const gen = this.gen;
    live.gen = gen;
    const data: Record<string, unknown> = {};
    if (live.query.filter) data.filter = live.query.filter;
    const ordering = orderingParam(live.query.ordering);
    if (ordering !== undefined) data.ordering = ordering;
    if (live.query.limit !== undefined) data.limit = live.query.limit;
    if (live.query.offset !== undefined) data.offset = live.query.offset;
    const initial = !live.first.settled;
    let r: ReplyPayload;
    try {
      r = await this.rawRequest(live.stream, 'observe', { data }, true, (p) => {
        if (p.response_status >= 400 || live.closed || this.gen !== gen) return;
        live.id = p.data?.observer ?? null;
        live.items = Array.isArray(p.data?.items) ? [...p.data.items] : [];
        live.seq = p.data?.seq ?? null;
        if (live.id) this.byObs.set(live.id, live);
        const diff: ObserveDiff = { msg: initial ? 'init' : 'reset', seq: live.seq ?? 0 };
        if (typeof p.data?.count === 'number') (diff as { count?: number }).count = p.data.count;
        try { live.onChange(live.items, diff); } catch (e) { this.emit('error', e); }
      });
    } catch {
      return;
    }
    if (live.closed) {
      if (r.response_status < 400 && r.data?.observer) {
        try { await this.rawRequest(live.stream, 'unobserve', { data: { observer: r.data.observer } }, true); } catch { /* gone */ }
      }
      return;
    }
    if (r.response_status >= 400) {
      const err = replyProblem(r);
      if (!live.first.settled) live.first.reject(err);
      else this.emit('error', err);
      return;
    }
    live.first.resolve();
  }

  /** @internal */
  async _closeLiveQuery(live: LiveQueryImpl): Promise<void> {
    if (live.closed) return;
    live.closed = true;
    this.lives.delete(live);
    const id = live.id;
    if (id) this.byObs.delete(id);
    live.first.reject(new ConnectionError('live query closed'));
    if (id && this.isOpenSocket()) {
      try { await this.rawRequest(live.stream, 'unobserve', { data: { observer: id } }, true); } catch { /* gone */ }
    }
  }
}
