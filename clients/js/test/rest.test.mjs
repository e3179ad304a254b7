// Records over REST, typed errors, auth, idempotency keys: against a real server.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Server, vin } from './helpers.mjs';
import {
  ProblemError, NotFoundError, ValidationError, BadRequestError, UnauthorizedError, ForbiddenError,
  PreconditionFailedError, UnprocessableError, ConflictError, isTask,
} from '../dist/index.js';

let server, ann, bob, anon;

before(async () => {
  server = await Server.start();
  ann = await server.user('ann');
  bob = await server.user('bob');
  anon = server.client();
});
after(async () => {
  ann?.close(); bob?.close(); anon?.close();
  await server?.dispose();
});

test('CRUD round trip', async () => {
  const cars = ann.collection('cars');
  const v = vin();
  const car = await cars.create({ brand: 'Ford', model: 2014, color: 'Blue', vin: v });
  assert.equal(car.brand, 'Ford');
  assert.equal(car.version, 1);
  assert.match(car.id, /^[0-9A-Z]{26}$/);
  assert.equal(typeof car.owner, 'string');

  const got = await anon.collection('cars').get(car.id);
  assert.deepEqual(got, car);

  const patched = await cars.patch(car.id, { color: 'Red' });
  assert.equal(patched.color, 'Red');
  assert.equal(patched.model, 2014);
  assert.equal(patched.version, 2);

  const replaced = await cars.update(car.id, { brand: 'Ford', model: 2015, vin: v });
  assert.equal(replaced.model, 2015);
  assert.equal(replaced.color, null, 'PUT resets absent fields');
  assert.equal(replaced.version, 3);

  const only = await cars.get(car.id, { fields: ['brand'] });
  assert.deepEqual(Object.keys(only).sort(), ['brand', 'id']);

  assert.equal(await cars.delete(car.id), null);
  await assert.rejects(cars.get(car.id), NotFoundError);
});

test('list: filters, ordering, paging', async () => {
  const cars = ann.collection('cars');
  const brand = `Brand${Date.now()}`;
  const made = [];
  for (const [i, color] of ['Blue', 'Red', 'Black', 'Blue', 'Red'].entries()) {
    made.push(await cars.create({ brand, model: 2000 + i, color, vin: vin() }));
  }
  const all = await cars.list({ filter: { brand }, ordering: '-model' });
  assert.equal(all.count, 5);
  assert.deepEqual(all.items.map((c) => c.model), [2004, 2003, 2002, 2001, 2000]);
  assert.equal(all.items, all.results);

  const gte = await cars.list({ filter: { brand, model__gte: 2003 }, ordering: ['model'] });
  assert.deepEqual(gte.items.map((c) => c.model), [2003, 2004]);

  const inList = await cars.list({ filter: { brand, color__in: ['Red', 'Black'] }, ordering: 'model' });
  assert.deepEqual(inList.items.map((c) => c.color), ['Red', 'Black', 'Red']);

  const ci = await cars.list({ filter: { brand__iexact: brand.toLowerCase(), color: 'Blue' } });
  assert.equal(ci.count, 2);

  const page2 = await cars.list({ filter: { brand }, ordering: 'model', limit: 2, offset: 2 });
  assert.equal(page2.count, 5);
  assert.deepEqual(page2.items.map((c) => c.model), [2002, 2003]);
  assert.ok(page2.next && page2.next.includes('offset=4'));
  assert.ok(page2.previous);

  const last = await cars.list({ filter: { brand }, ordering: 'model', limit: 2, offset: 4 });
  assert.equal(last.items.length, 1);
  assert.equal(last.next, null);

  const notNull = await cars.list({ filter: { brand, color__isnull: false } });
  assert.equal(notNull.count, 5);
});

test('typed errors: 404, 400 validation, 400 bad parameter, 401, 403, 412', async () => {
  const cars = ann.collection('cars');
  const e404 = await cars.get('01ZZZZZZZZZZZZZZZZZZZZZZZZ').catch((e) => e);
  assert.ok(e404 instanceof NotFoundError && e404 instanceof ProblemError);
  assert.equal(e404.status, 404);
  assert.equal(e404.kind, 'not_found');
  assert.ok(e404.requestId);

  const eVal = await cars.create({ model: 'old' }).catch((e) => e);
  assert.ok(eVal instanceof ValidationError, String(eVal));
  assert.equal(eVal.status, 400);
  assert.equal(eVal.kind, 'validation');
  assert.deepEqual(eVal.errors.brand, ['This field is required.']);
  assert.ok(eVal.errors.model.length > 0);
  assert.equal(eVal.body.status, 400);

  const eParam = await cars.list({ filter: { colour: 'Red' } }).catch((e) => e);
  assert.ok(eParam instanceof BadRequestError && !(eParam instanceof ValidationError));
  assert.equal(eParam.kind, 'bad_request');
  assert.equal(eParam.parameter, 'colour');

  const e401 = await anon.collection('cars').create({ brand: 'Opel' }).catch((e) => e);
  assert.ok(e401 instanceof UnauthorizedError);
  assert.equal(e401.kind, 'unauthorized');

  const car = await cars.create({ brand: 'Mine', vin: vin() });
  const e403 = await bob.collection('cars').patch(car.id, { color: 'Red' }).catch((e) => e);
  assert.ok(e403 instanceof ForbiddenError, String(e403));
  assert.equal(e403.status, 403);

  const e412 = await cars.patch(car.id, { color: 'Red' }, { ifMatch: 7 }).catch((e) => e);
  assert.ok(e412 instanceof PreconditionFailedError);
  const ok = await cars.patch(car.id, { color: 'Red' }, { ifMatch: car.version });
  assert.equal(ok.version, 2);

  const dup = await cars.create({ brand: 'Dup', vin: car.vin }).catch((e) => e);
  assert.ok(dup instanceof ConflictError, String(dup));
});

test('auth: register, login, me, logout', async () => {
  const lb = server.client();
  assert.equal(lb.token, null);
  await assert.rejects(lb.auth.me(), UnauthorizedError);
  const user = await lb.auth.register('carol', 'correct horse battery');
  assert.equal(user.username, 'carol');
  const wrong = await lb.auth.login('carol', 'wrong password!').catch((e) => e);
  assert.ok(wrong instanceof UnauthorizedError);
  assert.equal(lb.token, null);
  const res = await lb.auth.login('carol', 'correct horse battery');
  assert.equal(lb.token, res.token);
  assert.equal(res.user.username, 'carol');
  const me = await lb.auth.me();
  assert.equal(me.id, user.id);
  const token = lb.token;
  await lb.auth.logout();
  assert.equal(lb.token, null);
  await assert.rejects(lb.auth.me(), UnauthorizedError);
  // The old token is revoked: a client still holding it gets 401 even on public routes.
  const stale = server.client({ token });
  await assert.rejects(stale.collection('cars').list(), UnauthorizedError);
});

test('idempotency key: replay returns the original record; reuse with another body is 422', async () => {
  const cars = ann.collection('cars');
  const key = `key-${Date.now()}`;
  const v = vin();
  const first = await ann.request('POST', '/api/cars', { body: { brand: 'Idem', vin: v }, idempotencyKey: key });
  assert.equal(first.status, 201);
  assert.equal(first.replayed, false);
  const again = await ann.request('POST', '/api/cars', { body: { brand: 'Idem', vin: v }, idempotencyKey: key });
  assert.equal(again.status, 201);
  assert.equal(again.replayed, true);
  assert.equal(again.data.id, first.data.id);
  const viaCreate = await cars.create({ brand: 'Idem', vin: v }, { idempotencyKey: key });
  assert.equal(viaCreate.id, first.data.id);
  assert.equal((await cars.list({ filter: { vin: v } })).count, 1);

  const e422 = await cars.create({ brand: 'Other', vin: vin() }, { idempotencyKey: key }).catch((e) => e);
  assert.ok(e422 instanceof UnprocessableError, String(e422));
  assert.equal(e422.status, 422);
  assert.equal(e422.kind, 'unprocessable');
});

test('custom actions: list action and detail action', async () => {
  const cars = ann.collection('cars');
  const brand = `Act${Date.now()}`;
  const car = await cars.create({ brand, vin: vin() });
  const brands = await cars.action('brands', { method: 'GET' });
  assert.equal(brands.brands[brand], 1);
  assert.equal(isTask(brands), false);
  const repainted = await cars.action('repaint', { id: car.id, input: { color: 'Black' } });
  assert.equal(repainted.color, 'Black');
  const bad = await cars.action('repaint', { id: car.id, input: { color: 'Pink' } }).catch((e) => e);
  assert.ok(bad instanceof ValidationError, String(bad));
  await assert.rejects(cars.action('repaint', { id: '01ZZZZZZZZZZZZZZZZZZZZZZZZ', input: { color: 'Red' } }), NotFoundError);
});
