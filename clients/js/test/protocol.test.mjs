// Client-side protocol logic that a real server cannot be made to exercise on demand: a close
// with 4008 (slow consumer) resumes with `since`, duplicates are dropped, backoff is bounded,
// live-query diffs apply. A scripted in-process WebSocket stands in for the server here; the
// other test files run against the real one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Livebase } from '../dist/index.js';
import { until } from './helpers.mjs';

/** A fake WebSocket: records sent frames; the test drives the "server" side. */
function fakeSockets() {
  const sockets = [];
  class FakeWS {
    constructor(url, protocols) {
      this.url = url;
      this.protocols = protocols;
      this.readyState = 0;
      this.sent = [];
      this.listeners = { open: [], message: [], close: [], error: [] };
      sockets.push(this);
      queueMicrotask(() => {
        this.readyState = 1;
        this.fire('open', {});
        this.push({ stream: 'session', payload: { action: 'hello', data: { subscriber: `sock-${sockets.length}`, user: null } } });
      });
    }
    addEventListener(type, cb) { this.listeners[type].push(cb); }
    fire(type, ev) { for (const cb of this.listeners[type]) cb(ev); }
    push(frame) { this.fire('message', { data: JSON.stringify(frame) }); }
    send(text) { this.sent.push(JSON.parse(text)); }
    close(code = 1000, reason = '') { this.serverClose(code, reason); }
    serverClose(code, reason = '') {
      if (this.readyState === 3) return;
      this.readyState = 3;
      this.fire('close', { code, reason });
    }
    reply(frame, status, data, extra = {}) {
      this.push({ stream: frame.stream, payload: { action: frame.payload.action, request_id: frame.payload.request_id,
        response_status: status, data, errors: [], ...extra } });
    }
  }
  return { FakeWS, sockets };
}

const lastSent = (ws, action) => [...ws.sent].reverse().find((f) => f.payload.action === action);

test('4008 slow consumer: reconnect, resume with since = last seq, no duplicates', async () => {
  const { FakeWS, sockets } = fakeSockets();
  const lb = new Livebase({ url: 'http://fake.invalid', WebSocket: FakeWS, token: 'tok', reconnectMinDelay: 10, reconnectMaxDelay: 50 });
  const events = [];
  const pending = lb.realtime.subscribe('cars', (e) => events.push(e), { filter: { brand: 'Ford' } });
  // The token is sent first, as an auth login; subscriptions follow its reply.
  await until(() => sockets[0] && lastSent(sockets[0], 'login'), 'login sent');
  const ws1 = sockets[0];
  assert.equal(ws1.sent.length, 1);
  assert.equal(ws1.sent[0].stream, 'auth');
  assert.deepEqual(ws1.sent[0].payload.data, { token: 'tok' });
  ws1.reply(ws1.sent[0], 200, { user: { id: 'u1', username: 'ann' } });
  await until(() => lastSent(ws1, 'subscribe'), 'subscribe sent');
  const sub1 = lastSent(ws1, 'subscribe');
  assert.equal(sub1.payload.data.since, undefined);
  assert.deepEqual(sub1.payload.data.filter, { brand: 'Ford' });
  ws1.reply(sub1, 201, { subscription: 's-1', seq: 10 });
  const sub = await pending;
  const ev = (seq, action = 'update', subId = 's-1') =>
    ({ stream: 'cars', payload: { action, pk: `p${seq}`, data: { id: `p${seq}` }, seq, subscription: subId } });
  ws1.push(ev(11, 'create'));
  ws1.push(ev(12));
  ws1.serverClose(4008, 'slow consumer');
  await until(() => sockets[1] && lastSent(sockets[1], 'login'), 'login again on the new socket');
  const ws2 = sockets[1];
  ws2.reply(lastSent(ws2, 'login'), 200, { user: { id: 'u1', username: 'ann' } });
  await until(() => lastSent(ws2, 'subscribe'), 'resubscribe on the new socket');
  const sub2 = lastSent(ws2, 'subscribe');
  assert.equal(sub2.payload.data.since, 12, 'resumes after the last seq seen');
  ws2.reply(sub2, 201, { subscription: 's-9', seq: 15 });
  // Replay (13..15) after the reply, then a duplicate of 12 and of 14, then live 16.
  ws2.push(ev(13, 'update', 's-9'));
  ws2.push(ev(12, 'update', 's-9'));
  ws2.push(ev(14, 'delete', 's-9'));
  ws2.push(ev(14, 'delete', 's-9'));
  ws2.push(ev(15, 'create', 's-9'));
  ws2.push(ev(16, 'update', 's-1')); // the old socket's id means nothing now
  ws2.push(ev(16, 'update', 's-9'));
  assert.deepEqual(events.map((e) => e.seq), [11, 12, 13, 14, 15, 16]);
  assert.equal(sub.lastSeq, 16);
  assert.equal(sub.id, 's-9');
  await until(() => lb.realtime.status === 'open', 'open again');
  lb.close();
});

test('410 on resume: a fresh subscription and one resync event with the current list', async () => {
  const { FakeWS, sockets } = fakeSockets();
  const lb = new Livebase({ url: 'http://fake.invalid', WebSocket: FakeWS, reconnectMinDelay: 10, reconnectMaxDelay: 50 });
  const events = [];
  const pending = lb.realtime.subscribe('cars', (e) => events.push(e), { since: 5 });
  await until(() => sockets[0] && lastSent(sockets[0], 'subscribe'), 'subscribe');
  const ws = sockets[0];
  const s1 = lastSent(ws, 'subscribe');
  assert.equal(s1.payload.data.since, 5);
  ws.reply(s1, 410, null, { errors: ['History gone'] });
  await until(() => ws.sent.filter((f) => f.payload.action === 'subscribe').length === 2, 'fresh subscribe');
  const s2 = lastSent(ws, 'subscribe');
  assert.equal(s2.payload.data.since, undefined);
  ws.reply(s2, 201, { subscription: 's-2', seq: 40 });
  await until(() => lastSent(ws, 'list'), 're-list');
  const list = lastSent(ws, 'list');
  ws.reply(list, 200, { count: 1, results: [{ id: 'a' }], limit: 500, offset: 0 });
  await pending;
  assert.equal(events.length, 1);
  assert.equal(events[0].action, 'resync');
  assert.deepEqual(events[0].items, [{ id: 'a' }]);
  assert.equal(events[0].seq, 40);
  lb.close();
});

test('backoff is bounded and 4401 stops reconnecting', async () => {
  const { FakeWS, sockets } = fakeSockets();
  const lb = new Livebase({ url: 'http://fake.invalid', WebSocket: FakeWS, reconnectMinDelay: 5, reconnectMaxDelay: 40 });
  const delays = [];
  lb.realtime.on('status', (s) => { if (s.reconnectIn !== undefined) delays.push(s.reconnectIn); });
  await lb.realtime.connect();
  for (let i = 0; i < 8; i++) {
    const n = sockets.length;
    sockets.at(-1).serverClose(1006);
    await until(() => sockets.length === n + 1 && lb.realtime.status === 'open', `reconnect ${i}`);
  }
  assert.equal(delays.length, 8);
  assert.ok(delays.every((d) => d >= 2 && d <= 40), `delays within bounds: ${delays}`);
  const n = sockets.length;
  sockets.at(-1).serverClose(4401, 'credentials no longer valid');
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(sockets.length, n, 'no reconnect after 4401');
  assert.equal(lb.realtime.status, 'closed');
  await lb.realtime.connect(); // an explicit connect starts again
  assert.equal(sockets.length, n + 1);
  lb.close();
});

test('live query diffs: added, moved, changed, removed; reset after reconnect', async () => {
  const { FakeWS, sockets } = fakeSockets();
  const lb = new Livebase({ url: 'http://fake.invalid', WebSocket: FakeWS, reconnectMinDelay: 5, reconnectMaxDelay: 20 });
  const calls = [];
  const pending = lb.realtime.observe('cars', { ordering: '-model', limit: 3 }, (items, diff) => calls.push([items.map((x) => x.id).join(''), diff.msg]));
  await until(() => sockets[0] && lastSent(sockets[0], 'observe'), 'observe');
  const ws = sockets[0];
  const o = lastSent(ws, 'observe');
  assert.deepEqual(o.payload.data, { ordering: '-model', limit: 3 });
  ws.reply(o, 200, { observer: 'o-1', items: [{ id: 'a' }, { id: 'b' }], count: 2, seq: 1 });
  const live = await pending;
  const diff = (data, seq) => ws.push({ stream: 'cars', payload: { action: 'observe', observer: 'o-1', seq, data } });
  diff({ msg: 'added', order: 1, pk: 'c', item: { id: 'c' } }, 2);
  diff({ msg: 'moved', from: 2, order: 0, pk: 'b' }, 3);
  diff({ msg: 'changed', order: 1, pk: 'a', item: { id: 'a', v: 2 } }, 4);
  diff({ msg: 'removed', order: 2, pk: 'c' }, 5);
  assert.deepEqual(calls, [['ab', 'init'], ['acb', 'added'], ['bac', 'moved'], ['bac', 'changed'], ['ba', 'removed']]);
  assert.equal(live.items[1].v, 2);
  assert.equal(live.seq, 5);
  ws.serverClose(1001);
  await until(() => sockets[1] && lastSent(sockets[1], 'observe'), 're-observe');
  const o2 = lastSent(sockets[1], 'observe');
  sockets[1].reply(o2, 200, { observer: 'o-7', items: [{ id: 'z' }], count: 1, seq: 9 });
  await until(() => calls.length === 6, 'reset');
  assert.deepEqual(calls.at(-1), ['z', 'reset']);
  const closing = live.close();
  await until(() => lastSent(sockets[1], 'unobserve'), 'unobserve sent');
  const un = lastSent(sockets[1], 'unobserve');
  assert.deepEqual(un.payload.data, { observer: 'o-7' });
  sockets[1].reply(un, 204, null);
  await closing;
  assert.equal(live.closed, true);
  lb.close();
});
