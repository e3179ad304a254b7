// Server-Sent Events over fetch streaming (no EventSource: it cannot send Authorization nor
// Last-Event-ID on demand). Works in Node 20 and browsers.
import { makeProblem, parseRetryAfter, type ProblemError } from './errors.js';

export interface SseEvent<T = any> {
  /** `create`, `update`, `delete`, `task`, or `resync` (history gone: events were lost). */
  event: string;
  /** The `id:` line (the change's seq for change feeds, a counter for task streams). */
  id: string | null;
  /** `Number(id)` when numeric. */
  seq: number | null;
  /** `data:` parsed as JSON (the raw text when it is not JSON). */
  data: T;
}

export interface SseOptions {
  /** Filters of a change feed (`brand`, `model__gte`, ...). */
  filter?: Record<string, string | number | boolean | null | Array<string | number>>;
  /** Resume point: replay every change after this seq (sent as Last-Event-ID). */
  since?: number | string;
  /** Reconnect when the stream ends or fails (default true; task streams stop once finished). */
  reconnect?: boolean;
  /** Reconnect backoff in ms (default 250 .. 10000). */
  minDelay?: number;
  maxDelay?: number;
  signal?: AbortSignal;
  onOpen?: () => void;
  /** Errors: HTTP problems (a 401/403/404 stops the stream) and network failures (retried). */
  onError?: (err: Error) => void;
}

export interface SseHandle {
  close(): void;
  readonly closed: boolean;
  /** The last `id:` received: where a resume starts. */
  readonly lastEventId: string | null;
  /** Resolves when the stream stops for good (closed, finished task, or a fatal error). */
  readonly done: Promise<void>;
}

export interface SseHost {
  fetch: typeof fetch;
  headers(): Record<string, string>;
  credentials: RequestCredentials | undefined;
}

const FINAL = ['succeeded', 'failed', 'cancelled'];

export function openSse(host: SseHost, url: string, isTaskStream: boolean,
  onEvent: (e: SseEvent) => void, opts: SseOptions = {}): SseHandle {
  const ctrl = new AbortController();
  let closed = false;
  let lastEventId: string | null = opts.since !== undefined ? String(opts.since) : null;
  let lastSeq: number | null = lastEventId !== null && Number.isFinite(Number(lastEventId)) ? Number(lastEventId) : null;
  let retryMs: number | null = null;
  const minDelay = opts.minDelay ?? 250;
  const maxDelay = opts.maxDelay ?? 10_000;
  const reconnect = opts.reconnect ?? true;
  if (opts.signal) {
    if (opts.signal.aborted) closed = true;
    else opts.signal.addEventListener('abort', () => handle.close(), { once: true });
  }
  const report = (e: Error) => { try { opts.onError?.(e); } catch { /* ignore */ } };

  const sleep = (ms: number) => new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    ctrl.signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
  });

  async function once(): Promise<'again' | 'stop' | 'resync'> {
    const headers: Record<string, string> = { ...host.headers(), Accept: 'text/event-stream' };
    if (lastEventId !== null && !isTaskStream) headers['Last-Event-ID'] = lastEventId;
    const init: RequestInit = { method: 'GET', headers, signal: ctrl.signal, cache: 'no-store' };
    if (host.credentials) init.credentials = host.credentials;
    const res = await host.fetch(url, init);
    if (!res.ok) {
      let body: any = null;
      try { body = await res.json(); } catch { /* not JSON */ }
      const retryAfter = parseRetryAfter(res.headers.get('Retry-After'));
      const err: ProblemError = makeProblem({ status: res.status, body, requestId: res.headers.get('X-Request-Id'),
        ...(retryAfter !== undefined ? { retryAfter } : {}) });
      if (res.status === 410 && !isTaskStream) return 'resync';
      report(err);
      if (res.status === 429 || res.status >= 500) {
        if (err.retryAfter) retryMs = err.retryAfter * 1000;
        return 'again';
      }
      return 'stop';
    }
    opts.onOpen?.();
    if (!res.body) return 'again';
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buf = '';
    let ev = { event: '', data: [] as string[], id: null as string | null };
    let finished = false;
    const dispatch = () => {
      if (ev.data.length === 0) { ev = { event: '', data: [], id: null }; return; }
      const text = ev.data.join('\n');
      let data: any = text;
      try { data = JSON.parse(text); } catch { /* keep text */ }
      const id = ev.id ?? lastEventId;
      const seq = ev.id !== null && Number.isFinite(Number(ev.id)) ? Number(ev.id) : null;
      const name = ev.event || 'message';
      ev = { event: '', data: [], id: null };
      if (!isTaskStream && seq !== null && lastSeq !== null && seq <= lastSeq) return; // seen
      if (id !== null) lastEventId = id;
      if (!isTaskStream && seq !== null) lastSeq = seq;
      if (isTaskStream && name === 'task' && data && FINAL.includes(data.state)) finished = true;
      if (closed) return;
      try { onEvent({ event: name, id, seq, data }); } catch (e) { report(e as Error); }
    };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true });
      let nl: number;
      while ((nl = buf.search(/\r\n|\r|\n/)) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + (buf.startsWith('\r\n', nl) ? 2 : 1));
        if (line === '') { dispatch(); continue; }
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        let val = colon < 0 ? '' : line.slice(colon + 1);
        if (val.startsWith(' ')) val = val.slice(1);
        if (field === 'event') ev.event = val;
        else if (field === 'data') ev.data.push(val);
        else if (field === 'id') { if (!val.includes('\0')) ev.id = val; }
        else if (field === 'retry') { const n = Number(val); if (Number.isInteger(n)) retryMs = n; }
      }
      if (closed) { try { await reader.cancel(); } catch { /* ignore */ } return 'stop'; }
    }
    if (isTaskStream && finished) return 'stop';
    return 'again';
  }

  async function run(): Promise<void> {
    let attempt = 0;
    while (!closed) {
      let outcome: 'again' | 'stop' | 'resync';
      try {
        outcome = await once();
        if (outcome !== 'again') attempt = 0;
      } catch (e) {
        if (closed) break;
        report(e as Error);
        outcome = 'again';
      }
      if (closed || outcome === 'stop') break;
      if (outcome === 'resync') {
        lastEventId = null;
        lastSeq = null;
        try { onEvent({ event: 'resync', id: null, seq: null, data: null }); } catch (e) { report(e as Error); }
        continue;
      }
      if (!reconnect) break;
      const exp = retryMs ?? Math.min(maxDelay, minDelay * 2 ** Math.min(attempt, 16));
      retryMs = null;
      attempt++;
      await sleep(Math.round(exp / 2 + Math.random() * (exp / 2)));
    }
    closed = true;
  }

  const done = run();
  const handle: SseHandle = {
    close() {
      if (closed) return;
      closed = true;
      ctrl.abort();
    },
    get closed() { return closed; },
    get lastEventId() { return lastEventId; },
    done,
  };
  return handle;
}
