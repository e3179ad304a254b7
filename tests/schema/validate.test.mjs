// Validates the two generated API documents of a real server (docs/schema.md) with npm validators:
// GET /api/schema (OpenAPI 3.1) with @readme/openapi-parser, GET /api/schema/realtime (AsyncAPI
// 3.0.0) with @asyncapi/parser, and every JSON Schema in either with Ajv (draft 2020-12, strict).
// Then checks what they describe against the example config and against what the server answers.
//
// The server is the cars example: $LIVEBASE_BIN, default build/test/examples/cars/cars under the
// repository root, started with a copy of examples/cars/cars.toml in a temporary directory.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { compileErrors, validate as validateOpenApi } from '@readme/openapi-parser';
import { Parser as AsyncApiParser } from '@asyncapi/parser';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');
const bin = path.resolve(repo, process.env.LIVEBASE_BIN || 'build/test/examples/cars/cars');
const exampleConfig = fs.readFileSync(path.join(repo, 'examples/cars/cars.toml'), 'utf8');

// ---------------------------------------------------------------------------------------------
// The server

let dir;
let child;
let base; // http://127.0.0.1:<port>
let output = ''; // the server's stdout + stderr, shown when something fails

function writeConfig() {
    let cfg = exampleConfig
        .replace(/^listen\s*=.*$/m, 'listen = "127.0.0.1:0"')
        .replace(/^url\s*=\s*"sqlite:.*$/m, `url = ${JSON.stringify('sqlite:' + path.join(dir, 'cars.db'))}`)
        .replace(/^\[auth\]$/m, '[auth]\nthrottle.anonymous = "unlimited"');
    assert.match(cfg, /listen = "127\.0\.0\.1:0"/, 'the example config has no [server] listen line');
    assert.ok(cfg.includes(dir), 'the example config has no sqlite storage url');
    assert.match(cfg, /throttle\.anonymous = "unlimited"/, 'the example config has no [auth] table');
    const file = path.join(dir, 'cars.toml');
    fs.writeFileSync(file, cfg);
    return file;
}

/// The child's environment: ours without LIVEBASE_* (the server refuses unknown ones).
function childEnv() {
    const env = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('LIVEBASE_')) env[k] = v;
    return env;
}

function startServer(config) {
    return new Promise((resolve, reject) => {
        child = spawn(bin, ['serve', '-c', config], { cwd: dir, env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
        const timer = setTimeout(() => reject(new Error(`the server did not listen within 30 s:\n${output}`)), 30_000);
        const onData = (chunk) => {
            output += chunk;
            // JSON logs: {"msg":"listening",...,"port":N}; text logs: ... listening ... port=N
            for (const line of output.split('\n')) {
                if (!line.includes('listening')) continue;
                const m = line.match(/"?port"?\s*[:=]\s*"?(\d+)/);
                if (m && Number(m[1]) > 0) {
                    clearTimeout(timer);
                    resolve(Number(m[1]));
                    return;
                }
            }
        };
        child.stdout.setEncoding('utf8').on('data', onData);
        child.stderr.setEncoding('utf8').on('data', onData);
        child.on('error', (e) => {
            clearTimeout(timer);
            reject(new Error(`cannot start ${bin} (set LIVEBASE_BIN): ${e.message}`));
        });
        child.on('exit', (code, signal) => {
            clearTimeout(timer);
            reject(new Error(`the server exited (${code ?? signal}) before listening:\n${output}`));
        });
    });
}

async function stopServer() {
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
}

async function request(method, p, { body, token, headers = {} } = {}) {
    const h = { ...headers };
    if (body !== undefined) h['content-type'] = 'application/json';
    if (token) h.authorization = `Bearer ${token}`;
    const res = await fetch(base + p, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    return { status: res.status, headers: res.headers, text, json: text ? JSON.parse(text) : undefined };
}

let openapi; // the documents as served
let asyncapi;
let asyncapiText;

before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'livebase-schema-'));
    const port = await startServer(writeConfig());
    base = `http://127.0.0.1:${port}`;
    for (const [p, set] of [
        ['/api/schema', (r) => (openapi = r.json)],
        ['/api/schema/realtime', (r) => ((asyncapi = r.json), (asyncapiText = r.text))],
    ]) {
        const r = await request('GET', p);
        assert.equal(r.status, 200, `${p}: ${r.text}`);
        assert.match(r.headers.get('content-type'), /^application\/json/);
        set(r);
    }
});

after(async () => {
    await stopServer();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------
// Validators

/// Errors of @readme/openapi-parser ([] when valid). Never resolves external references.
async function openapiErrors(doc) {
    const result = await validateOpenApi(structuredClone(doc), { resolve: { external: false } });
    if (result.valid && result.warnings.length === 0) return [];
    return [compileErrors(result)];
}

/// Diagnostics of @asyncapi/parser at severity error or warning (spectral: 0 error, 1 warning,
/// 2 information, 3 hint), and whether it produced a document at all.
async function asyncapiErrors(doc) {
    const parser = new AsyncApiParser();
    const { document, diagnostics } = await parser.parse(typeof doc === 'string' ? doc : JSON.stringify(doc));
    const bad = diagnostics
        .filter((d) => d.severity <= 1)
        .map((d) => `${d.severity === 0 ? 'error' : 'warning'} ${d.code} at ${d.path.join('.')}: ${d.message}`);
    if (!document && bad.length === 0) bad.push('no document (and no diagnostics)');
    return bad;
}

/// Compiles every schema of `components.schemas` with Ajv (JSON Schema 2020-12, strict mode, so
/// an unknown keyword, a `required` property that is not declared or a type mismatch among the
/// keywords fail). References between components become references between Ajv schemas. Returns
/// the Ajv instance; `ajv.getSchema(idOf(name))` validates data against a component.
const idOf = (name) => `urn:livebase:schema:${name}`;
function compileComponents(doc) {
    const ajv = new Ajv2020({ strict: true, allErrors: true });
    addFormats(ajv);
    const schemas = structuredClone(doc.components.schemas);
    const extensions = new Set();
    const rewrite = (node) => {
        if (Array.isArray(node)) return node.forEach(rewrite);
        if (node === null || typeof node !== 'object') return;
        for (const [k, v] of Object.entries(node)) {
            if (k.startsWith('x-')) extensions.add(k);
            if (k === '$ref' && typeof v === 'string') {
                const m = v.match(/^#\/components\/schemas\/(.+)$/);
                assert.ok(m, `a schema $ref outside components.schemas: ${v}`);
                assert.ok(m[1] in doc.components.schemas, `dangling $ref ${v}`);
                node[k] = idOf(m[1]);
            } else if (k !== 'const' && k !== 'default' && k !== 'enum') {
                rewrite(v);
            }
        }
    };
    rewrite(schemas);
    for (const x of extensions) ajv.addKeyword({ keyword: x }); // annotations (x-livebase-*)
    for (const [name, s] of Object.entries(schemas)) ajv.addSchema({ ...s, $id: idOf(name) });
    for (const name of Object.keys(schemas)) {
        assert.doesNotThrow(() => ajv.getSchema(idOf(name)), `components.schemas["${name}"] does not compile`);
    }
    return ajv;
}

function assertConforms(ajv, name, data) {
    const check = ajv.getSchema(idOf(name));
    assert.ok(check, `no schema ${name}`);
    assert.ok(check(data), `${name} does not describe ${JSON.stringify(data)}: ${ajv.errorsText(check.errors)}`);
}

// ---------------------------------------------------------------------------------------------
// What the config declares (the example's own TOML; a deliberately small reader)

function declared() {
    const collections = new Set();
    const actions = []; // {collection, name, detail}
    const endpoints = []; // {name, path, method}
    let current = null;
    for (const raw of exampleConfig.split('\n')) {
        const line = raw.replace(/#.*$/, '').trim();
        let m;
        if ((m = line.match(/^\[collections\.(\w+)\.actions\.(\w+)\]$/))) {
            current = { collection: m[1], name: m[2], detail: false };
            actions.push(current);
        } else if ((m = line.match(/^\[collections\.(\w+)\]$/))) {
            collections.add(m[1]);
            current = null;
        } else if ((m = line.match(/^\[endpoints\.(\w+)\]$/))) {
            current = { name: m[1], path: null, method: 'GET' };
            endpoints.push(current);
        } else if (line.startsWith('[')) {
            current = null;
        } else if (current && (m = line.match(/^detail\s*=\s*(true|false)$/))) {
            current.detail = m[1] === 'true';
        } else if (current && (m = line.match(/^path\s*=\s*"([^"]+)"$/))) {
            current.path = m[1];
        } else if (current && (m = line.match(/^method\s*=\s*"([^"]+)"$/))) {
            current.method = m[1];
        }
    }
    return { collections: [...collections], actions, endpoints };
}

// ---------------------------------------------------------------------------------------------
// The tests

describe('OpenAPI document (GET /api/schema)', () => {
    test('is valid OpenAPI 3.1 for @readme/openapi-parser', async () => {
        assert.equal(openapi.openapi, '3.1.0');
        assert.deepEqual(await openapiErrors(openapi), []);
    });

    test('the validator rejects broken copies', async () => {
        const noInfo = structuredClone(openapi);
        delete noInfo.info; // required by the OpenAPI 3.1 schema
        assert.notDeepEqual(await openapiErrors(noInfo), []);

        const badIn = structuredClone(openapi);
        const params = badIn.paths['/api/cars'].get.parameters;
        assert.ok(params.length > 0);
        params.push({ name: 'nope', in: 'nowhere', schema: { type: 'string' } });
        assert.notDeepEqual(await openapiErrors(badIn), []);

        const dangling = structuredClone(openapi);
        delete dangling.components.schemas['cars.input']; // still referenced by POST /api/cars
        assert.notDeepEqual(await openapiErrors(dangling), []);
    });

    test('its JSON Schemas compile (draft 2020-12, strict)', () => {
        compileComponents(openapi);
        // ... and the check is not vacuous: a required property that is not declared fails.
        const broken = structuredClone(openapi);
        broken.components.schemas['cars.input'].required.push('no_such_field');
        assert.throws(() => compileComponents(broken));
    });

    test('describes every collection, action and endpoint of the config', () => {
        const { collections, actions, endpoints } = declared();
        assert.ok(collections.includes('cars'));
        assert.ok(actions.some((a) => a.collection === 'cars' && a.name === 'build' && a.detail));
        assert.ok(endpoints.some((e) => e.name === 'double' && e.path === '/api/double'));
        const p = openapi.paths;
        const has = (route, method) => assert.ok(p[route]?.[method], `no ${method.toUpperCase()} ${route}`);
        for (const c of collections) {
            has(`/api/${c}`, 'get');
            has(`/api/${c}`, 'post');
            for (const m of ['get', 'put', 'patch', 'delete']) has(`/api/${c}/{id}`, m);
            has(`/api/${c}/events`, 'get');
            for (const s of [c, `${c}.input`, `${c}.patch`, `${c}.filter`, `${c}.page`])
                assert.ok(openapi.components.schemas[s], `no components.schemas["${s}"]`);
            assert.ok(openapi.tags.some((t) => t.name === c), `no tag ${c}`);
        }
        for (const a of actions) {
            const route = a.detail ? `/api/${a.collection}/{id}:${a.name}` : `/api/${a.collection}:${a.name}`;
            assert.ok(p[route], `no path ${route}`);
            assert.ok(Object.values(p[route]).some((op) => op.operationId?.startsWith(`${a.collection}_${a.name}`)));
        }
        for (const e of endpoints) {
            const op = p[e.path]?.[e.method.toLowerCase()];
            assert.ok(op, `no ${e.method} ${e.path}`);
            assert.equal(op.operationId, `endpoint_${e.name}`);
            assert.ok(op.responses['202'], `${e.path} lists no 202`);
        }
        has('/api/cars/{id}:build', 'post');
        assert.ok(p['/api/cars/{id}:build'].post['x-livebase-task'], 'the build action runs a task');
        has('/api/tasks', 'get');
        has('/api/tasks/{id}', 'get');
        has('/api/tasks/{id}', 'delete');
        has('/api/tasks/{id}/result', 'get');
        for (const a of ['login', 'logout', 'me', 'register']) assert.ok(p[`/api/auth/${a}`], `no /api/auth/${a}`);
        has('/api/health', 'get');
        has('/api/schema', 'get');
        has('/api/schema/realtime', 'get');
        assert.ok(openapi.components.securitySchemes.bearer);
        assert.ok(openapi.components.securitySchemes.cookie);
        // The filter of a list: the declared fields and their lookups.
        const filter = openapi.components.schemas['cars.filter'].properties;
        for (const f of ['brand', 'model', 'model__gte', 'color']) assert.ok(filter[f], `cars.filter has no ${f}`);
    });

    test('the server answers as it describes', async () => {
        const ajv = compileComponents(openapi);
        const user = { username: 'schema-test', password: 'a long enough password 1' };
        const reg = await request('POST', '/api/auth/register', { body: user });
        assert.equal(reg.status, 201, reg.text);
        assertConforms(ajv, 'livebase.user', reg.json);
        const login = await request('POST', '/api/auth/login', { body: user });
        assert.equal(login.status, 200, login.text);
        assertConforms(ajv, 'livebase.user', login.json.user);

        const input = { brand: 'Ford', model: 2014, color: 'Blue', vin: 'SCHEMA-VIN-1' };
        assertConforms(ajv, 'cars.input', input);
        const created = await request('POST', '/api/cars', { body: input, token: login.json.token });
        assert.equal(created.status, 201, created.text);
        assertConforms(ajv, 'cars', created.json);
        assert.ok(!ajv.getSchema(idOf('cars.input'))({ ...input, no_such_field: 1 }), 'unknown fields are 400');

        const page = await request('GET', '/api/cars?brand=Ford');
        assert.equal(page.status, 200, page.text);
        assertConforms(ajv, 'cars.page', page.json);
        assert.equal(page.json.count, 1);

        const bad = await request('POST', '/api/cars', { body: { model: 1 }, token: login.json.token });
        assert.equal(bad.status, 400, bad.text);
        assertConforms(ajv, 'livebase.problem', bad.json);

        const task = await request('GET', '/api/double?foo=1');
        assert.equal(task.status, 202, task.text);
        assertConforms(ajv, 'livebase.task', task.json);
        const tasks = await request('GET', '/api/tasks', { token: login.json.token });
        assert.equal(tasks.status, 200, tasks.text);
        assertConforms(ajv, 'livebase.task_page', tasks.json);
    });
});

describe('AsyncAPI document (GET /api/schema/realtime)', () => {
    test('is valid AsyncAPI 3.0.0 for @asyncapi/parser', async () => {
        assert.equal(asyncapi.asyncapi, '3.0.0');
        assert.deepEqual(await asyncapiErrors(asyncapiText), []);
    });

    test('the validator rejects broken copies', async () => {
        const noInfo = structuredClone(asyncapi);
        delete noInfo.info; // required by the AsyncAPI 3.0.0 schema
        assert.notDeepEqual(await asyncapiErrors(noInfo), []);

        const dangling = structuredClone(asyncapi);
        delete dangling.components.schemas['livebase.credentials']; // auth.login refers to it
        assert.notDeepEqual(await asyncapiErrors(dangling), []);
    });

    test('its JSON Schemas compile (draft 2020-12, strict)', () => {
        compileComponents(asyncapi);
    });

    test('has the socket channel and the messages of every collection', () => {
        const { collections, actions } = declared();
        const socket = asyncapi.channels.socket;
        assert.ok(socket, 'no channels.socket');
        assert.equal(socket.address, '/ws');
        assert.ok(asyncapi.servers.websocket);
        assert.equal(asyncapi.servers.websocket.protocol, 'ws');
        const messages = asyncapi.components.messages;
        const inSocket = (key) => socket.messages[key]?.$ref === `#/components/messages/${key}`;
        for (const key of ['session.hello', 'error', 'tasks.event', 'auth.login.request', 'auth.login.reply']) {
            assert.ok(messages[key] && inSocket(key), `no message ${key} on the socket`);
        }
        for (const c of collections) {
            for (const a of ['list', 'retrieve', 'create', 'update', 'patch', 'delete', 'subscribe', 'unsubscribe', 'observe', 'unobserve']) {
                for (const kind of ['request', 'reply']) {
                    const key = `${c}.${a}.${kind}`;
                    assert.ok(messages[key] && inSocket(key), `no message ${key} on the socket`);
                }
                assert.equal(asyncapi.operations[`${c}.${a}`]?.action, 'send', `no send operation ${c}.${a}`);
            }
            for (const e of ['create', 'update', 'delete']) {
                const key = `${c}.event.${e}`;
                assert.ok(messages[key] && inSocket(key), `no message ${key}`);
                assert.deepEqual(messages[key].payload.properties.payload.properties.data, { $ref: `#/components/schemas/${c}` });
            }
            assert.ok(messages[`${c}.observe.diff`], `no message ${c}.observe.diff`);
            assert.equal(asyncapi.operations[`${c}.events`]?.action, 'receive');
            assert.equal(asyncapi.channels[`${c}.sse`]?.address, `/api/${c}/events`);
        }
        for (const a of actions) {
            assert.ok(messages[`${a.collection}.${a.name}.request`], `no message for action ${a.collection}:${a.name}`);
            assert.equal(asyncapi.operations[`${a.collection}.${a.name}`]?.action, 'send');
        }
    });
});

test('neither document mentions what the server never serves', () => {
    for (const [name, doc] of [['OpenAPI', openapi], ['AsyncAPI', asyncapi]]) {
        const text = JSON.stringify(doc);
        for (const secret of ['password_hash', 'auth_tokens', 'idempotency_keys']) {
            assert.ok(!text.includes(secret), `the ${name} document mentions ${secret}`);
        }
    }
    // The users collection is there, without its hash; the password is write-only.
    assert.ok(openapi.components.schemas.users);
    assert.ok(!('password' in openapi.components.schemas.users.properties));
});
