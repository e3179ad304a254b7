// The client as users install it: `npm pack` (the prepare script builds dist/), the tarball
// installed into a fresh project, `import { Livebase } from '@livebase/client'` against a real
// server, with the types alongside.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Server, WebSocket } from './helpers.mjs';

const pkgDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
let server;
let work;

before(async () => {
  server = await Server.start();
  work = mkdtempSync(join(tmpdir(), 'lb-pack-'));
});
after(async () => {
  await server?.dispose();
  if (work) rmSync(work, { recursive: true, force: true });
});

const npm = (args, cwd) => execFileSync('npm', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });

test('npm pack, install the tarball, import @livebase/client', async () => {
  // A checkout as cloned: no dist/ (the prepare script must build it), the dev tools installed.
  const checkout = join(work, 'checkout');
  for (const f of ['package.json', 'package-lock.json', 'tsconfig.json', 'README.md', 'src']) cpSync(join(pkgDir, f), join(checkout, f), { recursive: true });
  symlinkSync(join(pkgDir, 'node_modules'), join(checkout, 'node_modules'));
  npm(['pack', '--pack-destination', work, '--silent'], checkout);
  const tarball = readdirSync(work).find((f) => f.endsWith('.tgz'));
  assert.ok(tarball, 'npm pack made a tarball');
  const app = join(work, 'app');
  execFileSync('mkdir', ['-p', app]);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', type: 'module', private: true }));
  // No registry needed: the client has no runtime dependencies.
  npm(['install', '--offline', '--no-audit', '--no-fund', join(work, tarball)], app);
  const installed = join(app, 'node_modules', '@livebase', 'client');
  for (const f of ['package.json', 'dist/index.js', 'dist/index.d.ts', 'dist/realtime.d.ts']) {
    assert.ok(existsSync(join(installed, f)), `the package has ${f}`);
  }
  // What docs/client.md tells a Node 20 user to write, run from inside the new project.
  writeFileSync(join(app, 'watch.mjs'), `
import { Livebase } from '@livebase/client';
export async function run(url, WebSocket) {
  const lb = new Livebase({ url, WebSocket });
  const seen = [];
  const sub = await lb.collection('cars').subscribe((e) => seen.push(e.action + ' ' + e.data?.brand));
  await lb.auth.register('packaged', 'correct horse battery');
  await lb.auth.login('packaged', 'correct horse battery');
  const car = await lb.collection('cars').create({ brand: 'Packaged', model: 2001 });
  const page = await lb.collection('cars').list({ filter: { brand: 'Packaged' } });
  for (let i = 0; i < 200 && !seen.length; i++) await new Promise((r) => setTimeout(r, 25));
  await sub.close();
  lb.close();
  return { id: car.id, count: page.count, seen };
}
`);
  const mod = await import(pathToFileURL(join(app, 'watch.mjs')).href);
  const out = await mod.run(server.url, WebSocket);
  assert.equal(out.count, 1);
  assert.deepEqual(out.seen, ['create Packaged']);
});
