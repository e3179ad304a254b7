// Tasks: async submission, waiting by long poll and over the socket with progress, cancel,
// results, endpoints, direct submission over the socket.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Server, vin } from './helpers.mjs';
import { isTask, GoneError, ConflictError, ValidationError } from '../dist/index.js';

let server, ann;

before(async () => {
  server = await Server.start({ stepMs: 700 }); // build_car: 3 steps x 700 ms
  ann = await server.user('ann');
});
after(async () => {
  ann?.close();
  await server?.dispose();
});

function checkProgress(seen) {
  assert.ok(seen.length >= 2, `progress callbacks: ${seen.length}`);
  const running = seen.filter((t) => t.state === 'running' && typeof t.progress === 'number' && t.progress > 0 && t.progress < 100);
  assert.ok(running.length >= 1, `some intermediate progress: ${JSON.stringify(seen.map((t) => [t.state, t.progress]))}`);
  for (let i = 1; i < seen.length; i++) {
    assert.ok((seen[i].progress ?? 0) >= (seen[i - 1].progress ?? 0), 'progress never goes back');
  }
  assert.equal(seen.at(-1).state, 'succeeded');
}

test('async create returns a task; wait via poll gives the final task with its location', async () => {
  const cars = ann.collection('cars');
  const v = vin();
  const task = await cars.create({ brand: 'Opel', vin: v }, { async: true });
  assert.ok(isTask(task), JSON.stringify(task));
  assert.equal(task.kind, 'cars.create');
  const done = await ann.tasks.wait(task.id, { via: 'poll', timeout: 20_000 });
  assert.equal(done.state, 'succeeded');
  assert.ok(done.location?.startsWith('/api/cars/'));
  const created = await cars.get(done.location.split('/').pop());
  assert.equal(created.vin, v);

  const out = await ann.tasks.result(task.id);
  assert.equal(out.ready, true);
  assert.equal(out.status, 201);
  assert.equal(out.data.id, created.id);

  const listed = await ann.tasks.list({ filter: { kind: 'cars.create' } });
  assert.ok(listed.items.some((t) => t.id === task.id));
});

test('async with wait returns the synchronous answer when quick', async () => {
  const rec = await ann.collection('cars').create({ brand: 'Fiat', vin: vin() }, { async: true, wait: 5 });
  assert.equal(isTask(rec), false);
  assert.equal(rec.brand, 'Fiat');
});

test('build task: wait via long poll with progress callbacks', async () => {
  const cars = ann.collection('cars');
  const car = await cars.create({ brand: 'Build', vin: vin() });
  const task = await cars.action('build', { id: car.id });
  assert.ok(isTask(task));
  assert.equal(task.kind, 'build_car');
  const seen = [];
  const done = await ann.tasks.wait(task.id, { via: 'poll', onProgress: (t) => seen.push(t), timeout: 30_000 });
  assert.equal(done.state, 'succeeded');
  assert.deepEqual(done.result, { car: car.id, state: 'ready' });
  assert.deepEqual(done.steps.map((s) => [s.name, s.state]), [['frame', 'done'], ['paint', 'done'], ['wheels', 'done']]);
  checkProgress(seen);
  const out = await ann.tasks.result(task.id);
  assert.deepEqual(out, { ready: true, status: 200, data: { car: car.id, state: 'ready' }, location: null });
});

test('build task: wait via the socket with progress callbacks', async () => {
  const cars = ann.collection('cars');
  const car = await cars.create({ brand: 'Build', vin: vin() });
  const task = await cars.action('build', { id: car.id });
  const seen = [];
  const done = await ann.tasks.wait(task.id, { via: 'socket', onProgress: (t) => seen.push(t), timeout: 30_000 });
  assert.equal(done.state, 'succeeded');
  assert.equal(done.result.car, car.id);
  checkProgress(seen);
  assert.ok(seen.some((t) => t.steps?.some((s) => s.state === 'running')), 'running steps were seen');
});

test('cancel a running build; result is 410; cancelling again is 409', async () => {
  const cars = ann.collection('cars');
  const car = await cars.create({ brand: 'Cancel', vin: vin() });
  const task = await cars.action('build', { id: car.id });
  let cancelled = null;
  const waiting = ann.tasks.wait(task.id, { via: 'socket', timeout: 30_000, onProgress: (t) => {
    if (t.state === 'running' && !cancelled) { cancelled = ann.tasks.cancel(task.id); }
  } });
  const final = await waiting;
  const answer = await cancelled;
  assert.ok(isTask(answer));
  assert.equal(final.state, 'cancelled');
  assert.ok(final.error);
  await assert.rejects(ann.tasks.result(task.id), GoneError);
  await assert.rejects(ann.tasks.cancel(task.id), ConflictError);
  const got = await ann.tasks.get(task.id);
  assert.equal(got.state, 'cancelled');
});

test('tasks.get follows neither 303 nor loses the task; long poll with wait', async () => {
  const task = await ann.collection('cars').create({ brand: 'Get', vin: vin() }, { async: true });
  const t = await ann.tasks.get(task.id, { wait: 10 });
  assert.equal(t.id, task.id);
  assert.equal(t.state, 'succeeded');
  assert.ok(t.location);
});

test('endpoint: tastypie-async double, as a task and synchronously with wait', async () => {
  const task = await ann.endpoint('double', { foo: 21 });
  assert.ok(isTask(task), JSON.stringify(task));
  const done = await ann.tasks.wait(task.id, { timeout: 20_000 });
  assert.deepEqual(done.result, { result: 42 });
  const quick = await ann.endpoint('double', { foo: 4 }, { wait: 5 });
  assert.deepEqual(quick, { result: 8 });
  const failing = await ann.endpoint('double', { foo: 'x' }, { wait: 5 }).catch((e) => e);
  assert.ok(failing instanceof ValidationError, String(failing));
});

test('tasks.submit over the socket for an endpoint-bound kind', async () => {
  const task = await ann.tasks.submit('double', { foo: 5 });
  assert.ok(isTask(task));
  assert.equal(task.kind, 'double');
  const done = await ann.tasks.wait(task.id, { via: 'socket', timeout: 20_000 });
  assert.deepEqual(done.result, { result: 10 });
});

test('wait: an AbortSignal stops the wait (poll and socket), the task goes on', async () => {
  const cars = ann.collection('cars');
  const car = await cars.create({ brand: 'Abort', vin: vin() });
  const task = await cars.action('build', { id: car.id });
  for (const via of ['poll', 'socket']) {
    const ctrl = new AbortController();
    const p = ann.tasks.wait(task.id, { via, signal: ctrl.signal, onProgress: () => ctrl.abort() });
    const err = await p.catch((e) => e);
    assert.equal(err?.name, 'AbortError', `${via}: ${err}`);
  }
  const timedOut = await ann.tasks.wait(task.id, { via: 'poll', timeout: 50, pollWait: 10 }).catch((e) => e);
  assert.equal(timedOut?.name, 'ConnectionError', String(timedOut));
  const final = await ann.tasks.wait(task.id, { timeout: 30_000 });
  assert.equal(final.state, 'succeeded');
});
