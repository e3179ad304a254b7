// End-to-end test of the livebase console in headless Debian Chromium (playwright-core).
// Started by run.sh, which provides a running cars server and a user:
//   CONSOLE_URL   e.g. http://127.0.0.1:PORT/_/
//   LB_USER, LB_PASS
//   SHOT_DIR      where screenshots go on failure
//   CHROMIUM      browser binary (default /usr/bin/chromium)
import { chromium } from 'playwright-core';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const CONSOLE_URL = process.env.CONSOLE_URL;
const USER = process.env.LB_USER;
const PASS = process.env.LB_PASS;
const SHOT_DIR = process.env.SHOT_DIR ?? mkdtempSync(join(tmpdir(), 'lb-shots-'));
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
if (!CONSOLE_URL || !USER || !PASS) {
  console.error('console.test.mjs: CONSOLE_URL, LB_USER and LB_PASS are required (run ./run.sh)');
  process.exit(2);
}

const T = { short: 10_000, task: 45_000 };
const results = [];
let current = '';

function step(name) {
  current = name;
  console.log(`  … ${name}`);
}

async function expectText(locator, text, timeout = T.short) {
  await locator.filter({ hasText: text }).first().waitFor({ state: 'visible', timeout });
}

async function waitAttr(locator, attr, pred, what, timeout) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    last = await locator.getAttribute(attr, { timeout: Math.max(1, deadline - Date.now()) }).catch(() => undefined);
    if (last !== undefined && pred(last)) return last;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what} (last ${attr}=${JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, 100)); // polling interval, not an assertion
  }
}

async function login(page) {
  await page.goto(CONSOLE_URL);
  await page.getByTestId('login-form').waitFor({ timeout: T.short });
  await page.getByTestId('login-username').fill(USER);
  await page.getByTestId('login-password').fill(PASS);
  await page.getByTestId('login-submit').click();
  await expectText(page.getByTestId('current-user'), USER);
  await expectText(page.getByTestId('ws-status'), 'open');
}

async function openCars(page) {
  await page.getByTestId('nav-collection-cars').click();
  await page.getByTestId('records-table').waitFor({ timeout: T.short });
  await expectText(page.getByTestId('live-status'), 'live');
}

// launch() gives every run a fresh, empty profile (its own --user-data-dir) and removes it on close.
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  // Our own handlers below close the browser and exit.
  handleSIGINT: false,
  handleSIGTERM: false,
  handleSIGHUP: false,
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
});
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    console.error(`interrupted (${sig}) during "${current}"`);
    const bye = setTimeout(() => process.exit(1), 3000);
    browser.close().catch(() => {}).finally(() => { clearTimeout(bye); process.exit(1); });
  });
}
const pages = {};
const consoleErrors = [];
let failed = false;
try {
  const ctxA = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const ctxB = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const a = (pages.A = await ctxA.newPage());
  const b = (pages.B = await ctxB.newPage());
  for (const [name, p] of Object.entries(pages)) {
    p.on('pageerror', (e) => consoleErrors.push(`${name}: ${e.message}`));
    p.on('dialog', (d) => void d.accept());
  }

  step('page A: the console loads and logs in');
  await login(a);
  results.push('login');

  step('page B: a second context signs up as another user (and is logged in)');
  const userB = `e2e-b-${Date.now().toString(36)}`;
  await b.goto(CONSOLE_URL);
  await b.getByTestId('login-username').fill(userB);
  await b.getByTestId('login-password').fill('second-user-pass');
  await b.getByTestId('register-submit').click();
  await expectText(b.getByTestId('current-user'), userB);
  await expectText(b.getByTestId('ws-status'), 'open');
  results.push('sign-up + login in a second context');

  step('both pages open the cars table, subscribed');
  await openCars(a);
  await openCars(b);

  step('a bad filter shows the server problem (title/detail)');
  await a.getByTestId('filter-input').fill('colour=Red');
  await a.getByTestId('filter-apply').click();
  await expectText(a.getByTestId('error-title'), '400');
  await a.getByTestId('filter-input').fill('');
  await a.getByTestId('filter-apply').click();
  await a.getByTestId('error').waitFor({ state: 'hidden', timeout: T.short });
  results.push('problem shown');

  step('page A creates a car; page B shows it live');
  const brand = `E2E-${Date.now().toString(36)}`;
  await a.getByTestId('record-new').click();
  await a.getByTestId('record-form').waitFor({ timeout: T.short });
  if (await a.getByTestId('field-brand').count()) {
    // Field errors of a validation problem appear next to their fields.
    await a.getByTestId('record-save').click();
    await expectText(a.getByTestId('field-error-brand'), 'This field is required.');
    await a.getByTestId('field-brand').fill(brand);
    await a.getByTestId('field-model').fill('2020');
    await a.getByTestId('field-color').selectOption({ label: 'Blue' });
  } else {
    await a.getByTestId('record-json').fill(JSON.stringify({ brand, model: 2020, color: 'Blue' }));
  }
  await a.getByTestId('record-save').click();
  await a.getByTestId('record-form').waitFor({ state: 'detached', timeout: T.short });
  const rowB = b.getByTestId('record-row').filter({ hasText: brand });
  await rowB.first().waitFor({ timeout: T.short });
  const carId = await rowB.first().getAttribute('data-id');
  if (!carId) throw new Error('the new row has no data-id');
  await b.locator(`[data-testid="event-item"][data-action="create"][data-pk="${carId}"]`).waitFor({ timeout: T.short });
  await a.getByTestId('record-row').filter({ hasText: brand }).first().waitFor({ timeout: T.short });
  results.push('field errors shown; live create seen in page B (table and event feed)');

  step('paging: limit 1, next, prev');
  await a.getByTestId('limit-input').fill('1');
  await a.getByTestId('filter-apply').click();
  const total = Number(await waitAttr(a.getByTestId('page-info'), 'data-count', (v) => Number(v) >= 1, 'a count', T.short));
  await expectText(a.getByTestId('page-info'), `1–1 of ${total}`);
  if (total >= 2) {
    await a.getByTestId('page-next').click();
    await expectText(a.getByTestId('page-info'), `2–2 of ${total}`);
    await a.getByTestId('page-prev').click();
    await expectText(a.getByTestId('page-info'), `1–1 of ${total}`);
  }
  await a.getByTestId('limit-input').fill('25');
  await a.getByTestId('filter-apply').click();
  await a.getByTestId('record-row').filter({ hasText: brand }).first().waitFor({ timeout: T.short });
  results.push('paging');

  step('page B may not edit page A\'s car: the 403 problem is shown in the form');
  await b.locator(`[data-testid="record-row"][data-id="${carId}"] [data-testid="record-edit"]`).click();
  await b.getByTestId('record-form').waitFor({ timeout: T.short });
  await b.getByTestId('record-save').click();
  await expectText(b.getByTestId('form-error'), '403');
  await b.getByTestId('record-cancel').click();
  results.push('forbidden edit shows the problem');

  step('page B sees page A\'s edit live');
  await a.locator(`[data-testid="record-row"][data-id="${carId}"] [data-testid="record-edit"]`).click();
  await a.getByTestId('record-form').waitFor({ timeout: T.short });
  if (await a.getByTestId('field-color').count()) await a.getByTestId('field-color').selectOption({ label: 'Red' });
  else await a.getByTestId('record-json').fill(JSON.stringify({ brand, model: 2020, color: 'Red' }));
  await a.getByTestId('record-save').click();
  await b.locator(`[data-testid="record-row"][data-id="${carId}"] td[data-field="color"]`).filter({ hasText: 'Red' }).waitFor({ timeout: T.short });
  results.push('live update seen in page B');

  // ---- tasks ------------------------------------------------------------------------------
  async function startBuild(page) {
    await page.getByTestId('nav-tasks').click();
    await page.getByTestId('tasks-view').waitFor({ timeout: T.short });
    await expectText(page.getByTestId('live-status'), 'live');
    const action = page.getByTestId('task-action');
    const build = await action.locator('option').filter({ hasText: 'cars/{id}:build' }).first().getAttribute('value');
    await action.selectOption(build);
    await page.locator(`[data-testid="task-pk"] option[value="${carId}"]`).waitFor({ state: 'attached', timeout: T.short });
    await page.getByTestId('task-pk').selectOption(carId);
    const before = new Set(await page.getByTestId('task-row').evaluateAll((rows) => rows.map((r) => r.dataset.id)));
    await page.getByTestId('task-start').click();
    const deadline = Date.now() + T.short;
    for (;;) {
      const ids = await page.getByTestId('task-row').evaluateAll((rows) => rows.map((r) => r.dataset.id));
      const fresh = ids.find((id) => !before.has(id));
      if (fresh) return fresh;
      if (Date.now() > deadline) throw new Error('the started task did not appear in the tasks table');
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  step('page A starts a build task (the row\'s build button); its progress bar reaches 100%');
  let t1;
  await a.getByTestId('nav-collection-cars').click();
  const rowBuild = a.locator(`[data-testid="record-row"][data-id="${carId}"] [data-testid="row-action-build"]`);
  await a.locator(`[data-testid="record-row"][data-id="${carId}"]`).waitFor({ timeout: T.short });
  if (await rowBuild.count()) {
    // With the schema, the row offers the collection's detail actions; a task action opens the
    // tasks page on the new task.
    await rowBuild.click();
    await a.waitForURL(/#\/tasks\?highlight=/, { timeout: T.short });
    t1 = decodeURIComponent(new URL(a.url()).hash.split('highlight=')[1]);
    await a.locator(`[data-testid="task-row"][data-id="${t1}"]`).waitFor({ timeout: T.short });
  } else {
    t1 = await startBuild(a);
  }
  // Record every progress value the bar shows, to check it moved live and not in one jump.
  await a.evaluate((id) => {
    window.__seen = [];
    const look = () => {
      const bar = document.querySelector(`[data-testid="task-row"][data-id="${id}"] [data-testid="task-progress"]`);
      const v = bar?.getAttribute('data-progress');
      if (v && window.__seen[window.__seen.length - 1] !== v) window.__seen.push(v);
    };
    look();
    new MutationObserver(look).observe(document.querySelector('[data-testid="tasks-table"]'), { subtree: true, childList: true, attributes: true });
  }, t1);
  const row1 = a.locator(`[data-testid="task-row"][data-id="${t1}"]`);
  await waitAttr(row1.getByTestId('task-progress'), 'data-progress', (v) => v === '100', 'progress 100%', T.task);
  await waitAttr(row1, 'data-state', (v) => v === 'succeeded', 'state succeeded', T.task);
  await expectText(row1.getByTestId('task-state'), 'succeeded');
  const seen = await a.evaluate(() => window.__seen);
  const intermediate = seen.filter((v) => Number(v) > 0 && Number(v) < 100);
  if (intermediate.length < 2) throw new Error(`progress did not move live: saw ${JSON.stringify(seen)}`);
  results.push(`build task ${t1} reached 100% (seen ${seen.join(',')})`);

  step('page A starts another build and cancels it');
  const t2 = await startBuild(a);
  const row2 = a.locator(`[data-testid="task-row"][data-id="${t2}"]`);
  await waitAttr(row2, 'data-state', (v) => v === 'running', 'state running', T.task);
  await row2.getByTestId('task-cancel').click();
  await waitAttr(a.locator(`[data-testid="task-row"][data-id="${t2}"]`), 'data-state', (v) => v === 'cancelled', 'state cancelled', T.task);
  await expectText(a.locator(`[data-testid="task-row"][data-id="${t2}"]`).getByTestId('task-state'), 'cancelled');
  results.push(`task ${t2} cancelled`);

  step('the WebSocket console sends an envelope and shows both frames');
  await a.getByTestId('nav-ws').click();
  await a.getByTestId('ws-view').waitFor({ timeout: T.short });
  const rid = `e2e-${Date.now()}`;
  await a.getByTestId('ws-input').fill(JSON.stringify({ stream: 'cars', payload: { action: 'retrieve', pk: carId, request_id: rid } }));
  await a.getByTestId('ws-send').click();
  await a.locator('[data-testid="ws-frame"][data-dir="out"]').filter({ hasText: rid }).waitFor({ timeout: T.short });
  await a.locator('[data-testid="ws-frame"][data-dir="in"]').filter({ hasText: rid }).filter({ hasText: '"response_status":200' }).waitFor({ timeout: T.short });
  results.push('ws console round trip');

  step('page A deletes the car; it disappears from page B live');
  await a.getByTestId('nav-collection-cars').click();
  await a.locator(`[data-testid="record-row"][data-id="${carId}"] [data-testid="record-delete"]`).click(); // confirm() accepted
  await b.locator(`[data-testid="record-row"][data-id="${carId}"]`).waitFor({ state: 'detached', timeout: T.short });
  await b.locator(`[data-testid="event-item"][data-action="delete"][data-pk="${carId}"]`).waitFor({ timeout: T.short });
  results.push('live delete seen in page B');

  step('page B logs out');
  await b.getByTestId('logout').click();
  await b.getByTestId('login-form').waitFor({ timeout: T.short });
  results.push('logout');

  if (consoleErrors.length) throw new Error(`uncaught page errors: ${consoleErrors.join('; ')}`);
} catch (e) {
  failed = true;
  console.error(`FAIL during "${current}": ${e instanceof Error ? e.stack ?? e.message : e}`);
  for (const [name, p] of Object.entries(pages)) {
    const file = join(SHOT_DIR, `failure-page-${name}.png`);
    await p.screenshot({ path: file, fullPage: true }).then(() => console.error(`  screenshot: ${file}`), () => {});
  }
  if (consoleErrors.length) console.error(`  page errors: ${consoleErrors.join('; ')}`);
} finally {
  await browser.close().catch(() => {});
}

for (const r of results) console.log(`  ok  ${r}`);
console.log(failed ? 'browser tests: FAILED' : `browser tests: passed (${results.length} checks)`);
process.exit(failed ? 1 : 0);
