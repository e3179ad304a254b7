// The realtime socket: requests, subscriptions, live queries, raw frames, revocation.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Server, vin, until, sleep, WebSocket } from './helpers.mjs';
import { NotFoundError, ValidationError, UnauthorizedError } from '../dist/index.js';

let server, ann;

before(async () => {
  server = await Server.start();
  ann = await server.user('ann');
});
after(async () => {
  ann?.close();
  await server?.dispose();
});

test('connect, status events, CRUD over the socket, typed errors', async () => {
  const lb = server.client({ token: ann.token });
  const statuses = [];
  lb.realtime.on('status', (s) => statuses.push(s.status));
  assert.equal(lb.realtime.status, 'closed');
  await lb.realtime.connect();
  assert.equal(lb.realtime.status, 'open');
  assert.deepEqual(statuses, ['connecting', 'open']);
  assert.ok(lb.realtime.subscriber);
  assert.equal(lb.realtime.user?.username, 'ann');

  const v = vin();
  const car = await lb.realtime.request('cars', 'create', { data: { brand: 'Sock', vin: v } });
  assert.equal(car.vin, v);
  const got = await lb.realtime.request('cars', 'retrieve', { pk: car.id });
  assert.equal(got.id, car.id);
  const patched = await lb.realtime.request('cars', 'patch', { pk: car.id, data: { color: 'Red' } });
  assert.equal(patched.version, 2);
  const page = await lb.realtime.request('cars', 'list', { data: { filter: { vin: v } } });
  assert.equal(page.count, 1);
  const raw = await lb.realtime.requestRaw('cars', 'delete', { pk: car.id });
  assert.equal(raw.response_status, 204);
  await assert.rejects(lb.realtime.request('cars', 'retrieve', { pk: car.id }), NotFoundError);
  const bad = await lb.realtime.request('cars', 'create', { data: { model: 'x' } }).catch((e) => e);
  assert.ok(bad instanceof ValidationError, String(bad));
  assert.ok(bad.errors.brand);
  lb.close();
  assert.equal(lb.realtime.status, 'closed');
});

test('send() a raw envelope: the reply comes through on("message")', async () => {
  const lb = server.client();
  const frames = [];
  lb.realtime.on('message', (f) => frames.push(f));
  lb.realtime.send({ stream: 'cars', payload: { action: 'list', data: { limit: 1 }, request_id: 'raw-1' } });
  lb.realtime.send('not json');
  const reply = await until(() => frames.find((f) => f.payload?.request_id === 'raw-1'), 'raw reply');
  assert.equal(reply.payload.response_status, 200);
  const err = await until(() => frames.find((f) => f.stream === 'error'), 'error-stream reply');
  assert.equal(err.payload.response_status, 400);
  assert.equal(frames[0].payload.action, 'hello');
  lb.close();
});

test('subscribe gets create, update and delete events in order; closed handles get nothing', async () => {
  const lb = server.client();
  const brand = `Sub${Date.now()}`;
  const events = [];
  const sub = await lb.realtime.subscribe('cars', (e) => events.push(e), { filter: { brand } });
  assert.ok(sub.id);
  const other = [];
  const otherSub = await lb.collection('cars').subscribe((e) => other.push(e), { filter: { brand: 'Nobody' } });

  const cars = ann.collection('cars');
  const car = await cars.create({ brand, vin: vin() });
  await cars.patch(car.id, { color: 'Blue' });
  await cars.delete(car.id);
  await until(() => events.length >= 3, '3 events');
  assert.deepEqual(events.map((e) => [e.action, e.pk]), [['create', car.id], ['update', car.id], ['delete', car.id]]);
  assert.equal(events[1].data.color, 'Blue');
  assert.ok(events[0].seq < events[1].seq && events[1].seq < events[2].seq);
  assert.equal(sub.lastSeq, events[2].seq);
  assert.equal(other.length, 0);

  // A pk subscription.
  const car2 = await cars.create({ brand, vin: vin() });
  const one = [];
  const pkSub = await lb.realtime.subscribe('cars', (e) => one.push(e), { pk: car2.id });
  await cars.patch(car2.id, { color: 'Red' });
  // The subscription starts where the hub is, which may be just before car2's create: that
  // create can arrive too (its seq tells); the update must.
  const update = await until(() => one.find((e) => e.action === 'update'), 'pk update event');
  assert.equal(update.data.color, 'Red');
  assert.ok(one.every((e) => e.pk === car2.id));

  await sub.close();
  await pkSub.close();
  await otherSub.close();
  assert.equal(sub.closed, true);
  const n = events.length;
  const m = one.length;  // the update, and car2's create when the subscription began before it
  await cars.patch(car2.id, { color: 'Black' });
  // A fresh subscription sees the next change; the closed ones must not have.
  const probe = [];
  await lb.realtime.subscribe('cars', (e) => probe.push(e), { filter: { brand } });
  await cars.patch(car2.id, { color: 'Blue' });
  await until(() => probe.length >= 1, 'probe event');
  assert.equal(events.length, n);
  assert.equal(one.length, m);
  await assert.rejects(lb.realtime.subscribe('cars', () => {}, { pk: '01ZZZZZZZZZZZZZZZZZZZZZZZZ' }), NotFoundError);
  lb.close();
});

test('subscribe with a since beyond the log is a resync with the current list', async () => {
  const lb = server.client();
  const brand = `Resync${Date.now()}`;
  const cars = ann.collection('cars');
  const car = await cars.create({ brand, vin: vin() });
  const events = [];
  await lb.realtime.subscribe('cars', (e) => events.push(e), { filter: { brand }, since: 1e12 });
  await until(() => events.length >= 1, 'resync');
  assert.equal(events[0].action, 'resync');
  assert.deepEqual(events[0].items.map((c) => c.id), [car.id]);
  await cars.patch(car.id, { color: 'Red' });
  await until(() => events.length >= 2, 'event after resync');
  assert.equal(events[1].action, 'update');
  lb.close();
});

test('observe: the live window follows the diffs and equals a fresh list', async () => {
  const lb = server.client();
  const brand = `Obs${Date.now()}`;
  const cars = ann.collection('cars');
  const a = await cars.create({ brand, model: 2001, vin: vin() });
  const calls = [];
  const query = { filter: { brand }, ordering: '-model', limit: 3 };
  const live = await lb.realtime.observe('cars', query, (items, diff) => calls.push({ ids: items.map((c) => c.id), diff }));
  assert.equal(calls.length, 1);
  assert.equal(calls[0].diff.msg, 'init');
  assert.deepEqual(live.items.map((c) => c.id), [a.id]);

  const b = await cars.create({ brand, model: 2005, vin: vin() });
  const c = await cars.create({ brand, model: 2003, vin: vin() });
  const d = await cars.create({ brand, model: 2000, vin: vin() }); // outside the window (limit 3)
  await cars.patch(a.id, { model: 2010 }); // moves to the top
  await cars.patch(c.id, { color: 'Red' }); // changes in place
  await cars.delete(b.id);
  const expected = async () => (await cars.list({ filter: { brand }, ordering: '-model', limit: 3 })).items.map((x) => x.id);
  const want = await expected();
  assert.deepEqual(want, [a.id, c.id, d.id]);
  await until(() => JSON.stringify(live.items.map((x) => x.id)) === JSON.stringify(want), `window ${want}`);
  const msgs = new Set(calls.slice(1).map((x) => x.diff.msg));
  for (const m of ['added', 'removed']) assert.ok(msgs.has(m), `saw a ${m} diff: ${[...msgs]}`);
  assert.ok(msgs.has('moved') || msgs.has('changed'));
  assert.equal(live.items.find((x) => x.id === c.id).color, 'Red');
  assert.deepEqual(calls.at(-1).ids, want, 'onChange got the current list');
  await live.close();
  lb.close();
});

test('observe: a create into a window that is not full is one added diff, nothing removed', async () => {
  const lb = server.client();
  const cars = ann.collection('cars');
  for (const query of [{ ordering: '-created', limit: 10 }, { ordering: 'created' }, { ordering: '-model', limit: 5 }, {}]) {
    const brand = `Few${Date.now()}${Math.random().toString(36).slice(2, 6)}`;
    await cars.create({ brand, model: 2000, vin: vin() });
    await cars.create({ brand, model: 2000, vin: vin() });
    const diffs = [];
    const live = await lb.realtime.observe('cars', { ...query, filter: { brand } }, (items, diff) => diffs.push(diff));
    const made = await cars.create({ brand, model: 2000, vin: vin() });
    // One hub pass sends all the diffs of one change together, removals first: once the new car
    // is in, every diff of its create has been applied.
    await until(() => live.items.some((x) => x.id === made.id), `the new car in ${JSON.stringify(query)}`);
    const fresh = (await cars.list({ ...query, filter: { brand } })).items.map((x) => x.id);
    await until(() => JSON.stringify(live.items.map((x) => x.id)) === JSON.stringify(fresh), 'the window equals a fresh list');
    const after = diffs.slice(1).map((d) => d.msg);
    assert.deepEqual(after, ['added'], `${JSON.stringify(query)}: ${JSON.stringify(diffs.slice(1))}`);
    await live.close();
  }
  lb.close();
});

test('login reconnects the socket authenticated; 4401 on logout stops without looping', async () => {
  let sockets = 0;
  class Counting extends WebSocket {
    constructor(...args) { super(...args); sockets++; }
  }
  const lb = server.client({ WebSocket: Counting });
  await lb.realtime.connect();
  assert.equal(lb.realtime.user, null);
  await assert.rejects(lb.realtime.request('auth', 'me'), UnauthorizedError);
  await lb.auth.register('dave', 'correct horse battery');
  await lb.auth.login('dave', 'correct horse battery');
  await until(() => lb.realtime.status === 'open' && lb.realtime.user?.username === 'dave', 'authenticated socket');
  assert.equal(sockets, 2, 'login reconnected the socket');
  const me = await lb.realtime.request('auth', 'me');
  assert.equal(me.username, 'dave');

  // Another client revokes the token: this socket is closed with 4401 and stays closed.
  const statuses = [];
  lb.realtime.on('status', (s) => statuses.push(s));
  const errors = [];
  lb.realtime.on('error', (e) => errors.push(e));
  const other = server.client({ token: lb.token });
  await other.auth.logout();
  await until(() => statuses.some((s) => s.code === 4401), '4401 close');
  const before = sockets;
  await sleep(800); // several backoff periods (reconnectMaxDelay is 500 ms in the tests)
  assert.equal(sockets, before, 'no reconnect loop after 4401');
  assert.equal(lb.realtime.status, 'closed');
  assert.equal(lb.realtime.stoppedBy, 4401);
  assert.ok(errors.some((e) => e instanceof UnauthorizedError));
  lb.close();
});

test('own logout: the socket reconnects anonymously and subscriptions go on', async () => {
  const lb = server.client();
  await lb.auth.register('erin', 'correct horse battery');
  await lb.auth.login('erin', 'correct horse battery');
  const brand = `Out${Date.now()}`;
  const events = [];
  await lb.realtime.subscribe('cars', (e) => events.push(e), { filter: { brand } });
  assert.equal(lb.realtime.user?.username, 'erin');
  const a = await ann.collection('cars').create({ brand, vin: vin() });
  await until(() => events.length === 1, 'event while logged in');
  await lb.auth.logout();
  await until(() => lb.realtime.status === 'open' && lb.realtime.user === null, 'anonymous socket');
  await ann.collection('cars').patch(a.id, { color: 'Red' });
  await until(() => events.length === 2, 'event after logout');
  assert.deepEqual(events.map((e) => e.action), ['create', 'update']);
  lb.close();
});
