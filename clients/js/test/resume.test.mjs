// Reconnect and resume: the socket dropped by the test and the server restarted while writes
// happen; every event must arrive exactly once, in order. SSE fallback with Last-Event-ID.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Server, vin, until, sleep, freePort, WebSocket } from './helpers.mjs';

let server, ann;

before(async () => {
  server = await Server.start({ stepMs: 150 });
  ann = await server.user('ann');
});
after(async () => {
  ann?.close();
  await server?.dispose();
});

/** Writes through REST, retrying across a server restart; idempotency keys make retries safe. */
async function write(expected, fn) {
  const key = `w-${Date.now()}-${Math.random()}`;
  for (let i = 0; ; i++) {
    try {
      const rec = await fn(key);
      expected.push(rec);
      return rec;
    } catch (e) {
      const transient = e instanceof TypeError || e?.status === 503 || e?.status === 409;
      if (!transient || i > 300) throw e;
      await sleep(50);
    }
  }
}

const summary = (evs) => evs.map((e) => `${e.action}:${e.pk}:v${e.data.version}`);

test('socket dropped and server restarted during writes: every event exactly once, in order', async () => {
  const deadPort = await freePort(); // nothing listens here
  let blocked = false;
  let sockets = 0;
  class Gated extends WebSocket {
    constructor(url, protocols) {
      super(blocked ? url.replace(/:\d+\//, `:${deadPort}/`) : url, protocols);
      sockets++;
    }
  }
  const lb = server.client({ WebSocket: Gated, token: ann.token });
  const brand = `Resume${Date.now()}`;
  const events = [];
  const sub = await lb.realtime.subscribe('cars', (e) => events.push(e), { filter: { brand } });
  const windows = [];
  const live = await lb.realtime.observe('cars', { filter: { brand }, ordering: 'vin', limit: 100 },
    (items, diff) => windows.push(diff.msg));
  const statuses = [];
  lb.realtime.on('status', (s) => statuses.push(s));

  const expected = []; // records after each write, in commit order
  const cars = ann.collection('cars');
  const create = () => write(expected, (key) => cars.create({ brand, vin: vin() }, { idempotencyKey: key }))
    .then((rec) => { expected.at(-1).action = 'create'; return rec; });
  const patch = (id, color) => write(expected, (key) => cars.patch(id, { color }, { idempotencyKey: key }))
    .then((rec) => { expected.at(-1).action = 'update'; return rec; });

  for (let i = 0; i < 5; i++) await create();
  await until(() => events.length === 5, 'first 5 events');

  // 1. The test drops the connection and keeps the client away while more writes commit.
  blocked = true;
  const s0 = sockets;
  lb.realtime.socket.terminate();
  const first = await create();
  await patch(first.id, 'Red');
  for (let i = 0; i < 4; i++) await create();
  await until(() => sockets >= s0 + 2, 'failed reconnect attempts');
  assert.equal(events.length, 5, 'nothing arrives while disconnected');
  blocked = false;
  await until(() => events.length === expected.length, `events after reconnect (${events.length}/${expected.length})`);
  assert.deepEqual(summary(events), expected.map((r) => `${r.action}:${r.id}:v${r.version}`));

  // 2. The server restarts (same port and data) while a writer keeps writing.
  let writing = true;
  const writer = (async () => {
    let n = 0;
    while (writing || n < 10) {
      const rec = await create();
      if (n % 3 === 0) await patch(rec.id, 'Blue');
      n++;
    }
  })();
  await until(() => events.length > 12, 'writer running');
  await server.restart();
  await sleep(200);
  writing = false;
  await writer;
  await until(() => events.length >= expected.length, `events after restart (${events.length}/${expected.length})`, 20_000);
  await sleep(300); // anything extra (a duplicate) would arrive now
  assert.deepEqual(summary(events), expected.map((r) => `${r.action}:${r.id}:v${r.version}`));
  for (let i = 1; i < events.length; i++) assert.ok(events[i].seq > events[i - 1].seq, 'seq increases');
  assert.ok(statuses.some((s) => s.code === 1001 || s.code === 1006), `saw the server close: ${JSON.stringify(statuses.map((s) => s.code))}`);
  assert.equal(lb.realtime.status, 'open');
  assert.equal(sub.lastSeq, events.at(-1).seq);

  // The live query was re-established and equals a fresh list.
  assert.ok(windows.includes('reset'), 'the live query was reset after reconnect');
  const fresh = await cars.list({ filter: { brand }, ordering: 'vin', limit: 100 });
  await until(() => JSON.stringify(live.items.map((c) => [c.id, c.version])) ===
    JSON.stringify(fresh.items.map((c) => [c.id, c.version])), 'live window equals a fresh list');
  lb.close();
});

test('SSE change feed: events, resume with Last-Event-ID, reconnect across a restart', async () => {
  const lb = server.client();
  const brand = `Sse${Date.now()}`;
  const cars = ann.collection('cars');
  const got = [];
  const errors = [];
  let opened = 0;
  const h = lb.sse('cars', (e) => got.push(e), { filter: { brand }, onError: (e) => errors.push(e), minDelay: 50, maxDelay: 300, onOpen: () => opened++ });
  await until(() => opened === 1, 'sse stream open'); // the feed starts live: open it before writing
  const car = await cars.create({ brand, vin: vin() });
  await cars.patch(car.id, { color: 'Red' });
  await cars.delete(car.id);
  await until(() => got.length >= 3, 'sse events');
  assert.deepEqual(got.map((e) => [e.event, e.data.id]), [['create', car.id], ['update', car.id], ['delete', car.id]]);
  assert.ok(got.every((e) => typeof e.seq === 'number' && String(e.seq) === e.id));
  h.close();
  await h.done;
  const resumeFrom = h.lastEventId;
  assert.equal(resumeFrom, got[2].id);

  // Missed while closed: a new stream from lastEventId replays exactly these.
  const missed = [await cars.create({ brand, vin: vin() }), await cars.create({ brand, vin: vin() })];
  const got2 = [];
  const h2 = lb.sse('cars', (e) => got2.push(e), { filter: { brand }, since: resumeFrom, minDelay: 50, maxDelay: 300 });
  await until(() => got2.length >= 2, 'replayed sse events');
  assert.deepEqual(got2.map((e) => e.data.id), missed.map((c) => c.id));

  // The server restarts: the handle reconnects with Last-Event-ID and loses nothing.
  await server.restart();
  const after1 = await cars.create({ brand, vin: vin() });
  await until(() => got2.length >= 3, 'sse event after restart', 20_000);
  await sleep(300);
  assert.deepEqual(got2.map((e) => e.data.id), [...missed.map((c) => c.id), after1.id]);
  h2.close();

  // History beyond the log: 410 becomes a `resync` event, then live events follow.
  const got3 = [];
  let opened3 = 0;
  const h3 = lb.sse('cars', (e) => got3.push(e), { filter: { brand }, since: 1e12, onOpen: () => opened3++ });
  await until(() => got3.length >= 1, 'resync');
  assert.equal(got3[0].event, 'resync');
  await until(() => opened3 === 1, 'sse stream open after resync');
  const c3 = await cars.create({ brand, vin: vin() });
  await until(() => got3.length >= 2, 'event after resync');
  assert.equal(got3[1].data.id, c3.id);
  h3.close();
});

test('SSE task stream: snapshots until the task finishes', async () => {
  const cars = ann.collection('cars');
  const car = await cars.create({ brand: 'SseTask', vin: vin() });
  const task = await cars.action('build', { id: car.id });
  const snaps = [];
  const h = ann.sse(`tasks/${task.id}`, (e) => snaps.push(e));
  await Promise.race([h.done, sleep(20_000).then(() => { throw new Error('task stream did not end'); })]);
  assert.ok(snaps.length >= 2, `snapshots: ${snaps.length}`);
  assert.ok(snaps.every((e) => e.event === 'task' && e.data.id === task.id));
  assert.equal(snaps.at(-1).data.state, 'succeeded');
  assert.equal(h.closed, true);
});
