// End-to-end test of the livebase console in headless Debian Chromium (playwright-core), as a
// person uses it: at 1280 and at 800 px wide, with real mouse presses (button down, a human
// 100-200 ms hold, button up) on the controls that live data keeps updating, an axe-core check
// of every page (no serious or critical violation), and a screenshot of every step.
// Started by run.sh, which provides a running cars server and a user:
//   CONSOLE_URL   e.g. http://127.0.0.1:PORT/_/
//   LB_USER, LB_PASS
//   SHOT_DIR      where the screenshots go (one per step and width; failures too)
//   CHROMIUM      browser binary (default /usr/bin/chromium)
//   WIDTHS        viewport widths to run (default "1280 800")
import { chromium } from 'playwright-core';
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const CONSOLE_URL = process.env.CONSOLE_URL;
const USER = process.env.LB_USER;
const PASS = process.env.LB_PASS;
const SHOT_DIR = process.env.SHOT_DIR ?? mkdtempSync(join(tmpdir(), 'lb-shots-'));
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const WIDTHS = (process.env.WIDTHS ?? '1280 800').split(/\s+/).filter(Boolean).map(Number);
if (!CONSOLE_URL || !USER || !PASS) {
  console.error('console.test.mjs: CONSOLE_URL, LB_USER and LB_PASS are required (run ./run.sh)');
  process.exit(2);
}
mkdirSync(SHOT_DIR, { recursive: true });
const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

const T = { short: 10_000, task: 45_000 };
const results = [];
let current = '';
let width = 0;

function step(name) {
  current = `${width} px: ${name}`;
  console.log(`  … ${current}`);
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

async function waitFor(pred, what, timeout = T.short) {
  const deadline = Date.now() + timeout;
  for (;;) {
    if (await pred()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100)); // polling interval, not an assertion
  }
}

/**
 * Presses `locator` as a person does: the pointer moves onto the control (which must be the
 * element under it, not covered and inside the window), the button goes down, is held for
 * 100-200 ms, and comes up. A control replaced during the hold does not get the click.
 */
async function press(page, locator) {
  await locator.waitFor({ state: 'visible', timeout: T.short });
  await locator.scrollIntoViewIfNeeded();
  const box = await locator.boundingBox();
  if (!box) throw new Error('press: the control has no box');
  const vp = page.viewportSize();
  const x = box.x + box.width / 2;
  const y = box.y + box.height / 2;
  if (x < 0 || y < 0 || x > vp.width || y > vp.height) throw new Error(`press: the control's centre (${x}, ${y}) is outside the ${vp.width}x${vp.height} window`);
  const onTop = await locator.evaluate((el, [px, py]) => {
    const hit = document.elementFromPoint(px, py);
    return hit === el || el.contains(hit) ? '' : (hit ? hit.outerHTML.slice(0, 120) : 'nothing');
  }, [x, y]);
  if (onTop) throw new Error(`press: the control is covered by ${onTop}`);
  await page.mouse.move(x, y);
  await page.mouse.down();
  await new Promise((r) => setTimeout(r, 100 + Math.floor(Math.random() * 101))); // a human press, not synchronisation
  await page.mouse.up();
}

async function shot(page, name) {
  await page.screenshot({ path: join(SHOT_DIR, `${width}-${name}.png`), fullPage: false });
}

/** axe-core on the page as it is: no violation of serious or critical impact. */
async function axeCheck(page, name) {
  const has = await page.evaluate(() => typeof window.axe !== 'undefined');
  if (!has) await page.evaluate(AXE_SOURCE);
  const found = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ')) }));
  });
  const bad = found.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  if (bad.length) throw new Error(`axe: ${bad.length} serious violation(s) on ${name}: ${JSON.stringify(bad, null, 1)}`);
  return found.length;
}

/** No horizontal scrolling hides columns: the table fits its frame. */
async function expectTableFits(page, testid) {
  const fit = await page.getByTestId(testid).evaluate((t) => {
    const wrap = t.parentElement;
    return { scroll: wrap.scrollWidth, client: wrap.clientWidth };
  });
  if (fit.scroll > fit.client + 1) throw new Error(`${testid} scrolls sideways at ${width} px (${fit.scroll} > ${fit.client}): columns are hidden`);
}

async function login(page) {
  await page.goto(CONSOLE_URL);
  await page.getByTestId('login-form').waitFor({ timeout: T.short });
  await page.getByLabel('Username').fill(USER);
  await page.getByLabel('Password').fill(PASS);
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

async function run(w) {
  width = w;
  const pages = {};
  const consoleErrors = [];
  const ctxA = await browser.newContext({ viewport: { width: w, height: 900 } });
  const ctxB = await browser.newContext({ viewport: { width: w, height: 900 } });
  try {
    const a = (pages.A = await ctxA.newPage());
    const b = (pages.B = await ctxB.newPage());
    for (const [name, p] of Object.entries(pages)) {
      p.on('pageerror', (e) => consoleErrors.push(`${name}: ${e.message}`));
      p.on('dialog', (d) => void d.accept());
    }

    step('the console loads signed out; the login form has labels and does not wrap');
    await a.goto(CONSOLE_URL);
    await a.getByTestId('login-form').waitFor({ timeout: T.short });
    await a.getByTestId('home-view').waitFor({ timeout: T.short });
    const loginBox = await a.getByTestId('login-submit').boundingBox();
    if (!loginBox || loginBox.height > 34) throw new Error(`"Log in" wraps at ${w} px (height ${loginBox?.height})`);
    await shot(a, '01-signed-out');
    await axeCheck(a, 'the signed-out home page');
    results.push(`${w}: signed-out page (labels, no wrapping, axe)`);

    step('page A logs in');
    await login(a);

    step('page B signs up as another user (and is logged in)');
    const userB = `e2e-b-${w}-${Date.now().toString(36)}`;
    await b.goto(CONSOLE_URL);
    await b.getByLabel('Username').fill(userB);
    await b.getByLabel('Password').fill('second-user-pass');
    await b.getByTestId('register-submit').click();
    await expectText(b.getByTestId('current-user'), userB);
    await expectText(b.getByTestId('ws-status'), 'open');
    results.push(`${w}: login, and sign-up in a second context`);

    step('both pages open the cars table, subscribed');
    await openCars(a);
    await openCars(b);

    step('a bad filter shows the server problem and clears the table');
    await a.getByTestId('filter-input').fill('colour=Red');
    await a.getByTestId('filter-apply').click();
    await expectText(a.getByTestId('error-title'), '400');
    await expectText(a.getByTestId('records-empty'), 'refused');
    if (await a.getByTestId('record-row').count()) throw new Error('rows of the last good list stay after a refused filter');
    await shot(a, '02-bad-filter');
    await a.getByTestId('filter-input').fill('');
    await a.getByTestId('filter-apply').click();
    await a.getByTestId('error').waitFor({ state: 'hidden', timeout: T.short });
    results.push(`${w}: problem shown, stale rows cleared`);

    step('page A creates a car in the drawer: field errors, a toast, the row on top, highlighted');
    const brand = `E2E-${w}-${Date.now().toString(36)}`;
    await a.getByTestId('record-new').click();
    await a.getByTestId('record-form').waitFor({ timeout: T.short });
    await a.getByTestId('record-save').click();
    await expectText(a.getByTestId('field-error-brand'), 'This field is required.');
    await a.getByTestId('field-brand').fill(brand);
    await a.getByTestId('field-model').fill('2020');
    await a.getByTestId('field-color').selectOption({ label: 'Blue' });
    await shot(a, '03-new-record-form');
    await axeCheck(a, 'the new-record drawer');
    await a.getByTestId('record-save').click();
    await a.getByTestId('record-form').waitFor({ state: 'detached', timeout: T.short });
    await expectText(a.getByTestId('toast'), 'Created cars');
    const first = a.getByTestId('record-row').first();
    await expectText(first, brand);
    const carId = await first.getAttribute('data-id');
    if (!carId) throw new Error('the new row has no data-id');
    await waitFor(async () => (await first.getAttribute('class'))?.includes('highlight'), 'the new row highlighted');
    await shot(a, '04-created');
    results.push(`${w}: create with field errors, toast, newest first, highlight`);

    step('page B shows the new car live (table and one feed item); nulls show as —, the owner is a username');
    const rowB = b.locator(`[data-testid="record-row"][data-id="${carId}"]`);
    await rowB.waitFor({ timeout: T.short });
    await b.locator(`[data-testid="event-item"][data-action="create"][data-pk="${carId}"]`).waitFor({ timeout: T.short });
    await expectText(rowB.locator('td[data-field="vin"]'), '—');
    await expectText(a.locator(`[data-testid="record-row"][data-id="${carId}"] td[data-field="owner"]`), USER);
    const updated = a.locator(`[data-testid="record-row"][data-id="${carId}"] td[data-field="updated"] time`);
    if (!/^\d{4}-\d\d-\d\dT/.test((await updated.getAttribute('title')) ?? '')) throw new Error('the relative time has no ISO title');
    await expectTableFits(a, 'records-table');
    await expectTableFits(b, 'records-table');
    await shot(b, '05-live-create-seen');
    results.push(`${w}: live create in page B; — for null; owner username; relative time; the table fits`);

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
    await a.locator(`[data-testid="record-row"][data-id="${carId}"]`).waitFor({ timeout: T.short });
    results.push(`${w}: paging`);

    step('a sortable header works from the keyboard and says its order');
    await a.getByTestId('sort-brand').focus();
    await a.keyboard.press('Enter');
    await waitAttr(a.locator('th[data-col="brand"]'), 'aria-sort', (v) => v === 'ascending', 'aria-sort ascending', T.short);
    await a.getByTestId('sort-brand').focus();
    await a.keyboard.press('Enter');
    await waitAttr(a.locator('th[data-col="brand"]'), 'aria-sort', (v) => v === 'descending', 'aria-sort descending', T.short);
    await a.getByTestId('ordering-input').fill('-created');
    await a.getByTestId('filter-apply').click();
    await waitAttr(a.locator('th[data-col="created"], th[data-col="brand"]').first(), 'aria-sort', (v) => v === 'none', 'back to newest first', T.short);
    results.push(`${w}: keyboard sorting with aria-sort`);

    step("page B may not change page A's car: the menu and the drawer offer Edit and Delete disabled");
    await press(b, rowB.getByTestId('row-menu-button'));
    await b.getByTestId('row-menu').waitFor({ timeout: T.short });
    for (const id of ['menu-edit', 'menu-delete', 'menu-action-build']) {
      if (!(await b.getByTestId(id).isDisabled())) throw new Error(`${id} is offered to a user the rules refuse`);
    }
    await shot(b, '06-menu-refused');
    await b.keyboard.press('Escape');
    await b.getByTestId('row-menu').waitFor({ state: 'hidden', timeout: T.short });
    await rowB.locator('td[data-field="brand"]').click();
    await b.getByTestId('record-drawer').waitFor({ timeout: T.short });
    if (!(await b.getByTestId('record-edit').isDisabled())) throw new Error('the drawer offers Edit to a user the rules refuse');
    await expectText(b.getByTestId('drawer-refusal'), 'owner');
    await axeCheck(b, 'the record drawer');
    await b.keyboard.press('Escape');
    await b.getByTestId('record-drawer').waitFor({ state: 'hidden', timeout: T.short });
    results.push(`${w}: forbidden actions disabled; Escape closes the menu and the drawer`);

    step("page A edits through the row menu; page B sees it live; Escape closes a form");
    const rowA = a.locator(`[data-testid="record-row"][data-id="${carId}"]`);
    await press(a, rowA.getByTestId('row-menu-button'));
    await press(a, a.getByTestId('menu-edit'));
    await a.getByTestId('record-form').waitFor({ timeout: T.short });
    await a.keyboard.press('Escape');
    await a.getByTestId('record-form').waitFor({ state: 'detached', timeout: T.short });
    await press(a, rowA.getByTestId('row-menu-button'));
    await press(a, a.getByTestId('menu-edit'));
    await a.getByTestId('field-color').selectOption({ label: 'Red' });
    await a.getByTestId('record-save').click();
    await expectText(a.getByTestId('toast'), 'Saved cars');
    await b.locator(`[data-testid="record-row"][data-id="${carId}"] td[data-field="color"]`).filter({ hasText: 'Red' }).waitFor({ timeout: T.short });
    results.push(`${w}: edit from the menu seen live in page B`);

    // ---- tasks ----------------------------------------------------------------------------
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

    step("page A starts a build from the drawer; its progress bar moves live to 100%");
    await rowA.locator('td[data-field="brand"]').click();
    await a.getByTestId('record-drawer').waitFor({ timeout: T.short });
    await press(a, a.getByTestId('row-action-build'));
    await a.waitForURL(/#\/tasks\?highlight=/, { timeout: T.short });
    const t1 = decodeURIComponent(new URL(a.url()).hash.split('highlight=')[1]);
    const row1 = a.locator(`[data-testid="task-row"][data-id="${t1}"]`);
    await row1.waitFor({ timeout: T.short });
    // Every progress value the bar shows, and whether the row or its button were ever replaced.
    await a.evaluate((id) => {
      window.__seen = [];
      window.__replaced = 0;
      const row = document.querySelector(`[data-testid="task-row"][data-id="${id}"]`);
      const look = () => {
        const now = document.querySelector(`[data-testid="task-row"][data-id="${id}"]`);
        if (now !== row) window.__replaced++;
        const v = now?.querySelector('[data-testid="task-progress"]')?.getAttribute('data-progress');
        if (v && window.__seen[window.__seen.length - 1] !== v) window.__seen.push(v);
      };
      look();
      new MutationObserver(look).observe(document.querySelector('[data-testid="tasks-table"]'), { subtree: true, childList: true, attributes: true });
    }, t1);
    await waitAttr(row1.getByTestId('task-progress'), 'data-progress', (v) => v === '100', 'progress 100%', T.task);
    await waitAttr(row1, 'data-state', (v) => v === 'succeeded', 'state succeeded', T.task);
    await expectText(row1.getByTestId('task-state'), 'succeeded');
    const seen = await a.evaluate(() => window.__seen);
    const intermediate = seen.filter((v) => Number(v) > 0 && Number(v) < 100);
    if (intermediate.length < 2) throw new Error(`progress did not move live: saw ${JSON.stringify(seen)}`);
    if (await a.evaluate(() => window.__replaced)) throw new Error('progress events replaced the task row');
    const taskItems = await a.locator(`[data-testid="event-item"][data-task="${t1}"]`).count();
    if (taskItems !== 1) throw new Error(`the feed has ${taskItems} items for one task (want 1, updated in place)`);
    await expectTableFits(a, 'tasks-table');
    await shot(a, '07-task-succeeded');
    await axeCheck(a, 'the tasks page');
    results.push(`${w}: build task ${t1} reached 100% in place (seen ${seen.join(',')}); one feed item`);

    step('page A starts another build and cancels it with a real press while progress arrives');
    const t2 = await startBuild(a);
    const row2 = a.locator(`[data-testid="task-row"][data-id="${t2}"]`);
    await waitAttr(row2.getByTestId('task-progress'), 'data-progress', (v) => Number(v) > 0, 'progress under way', T.task);
    await press(a, row2.getByTestId('task-cancel'));
    await waitAttr(row2, 'data-state', (v) => v === 'cancelled', 'state cancelled', T.task);
    await expectText(row2.getByTestId('task-state'), 'cancelled');
    await press(a, row2.getByTestId('task-details'));
    await a.getByTestId('task-details-card').waitFor({ timeout: T.short });
    await a.keyboard.press('Escape');
    await a.getByTestId('task-details-card').waitFor({ state: 'detached', timeout: T.short });
    await shot(a, '08-task-cancelled');
    results.push(`${w}: task ${t2} cancelled by a held press; Details; Escape`);

    step('the WebSocket console sends an envelope and shows both frames');
    await a.getByTestId('nav-ws').click();
    await a.getByTestId('ws-view').waitFor({ timeout: T.short });
    const rid = `e2e-${Date.now()}`;
    await a.getByTestId('ws-input').fill(JSON.stringify({ stream: 'cars', payload: { action: 'retrieve', pk: carId, request_id: rid } }));
    await a.getByTestId('ws-send').click();
    await a.locator('[data-testid="ws-frame"][data-dir="out"]').filter({ hasText: rid }).waitFor({ timeout: T.short });
    await a.locator('[data-testid="ws-frame"][data-dir="in"]').filter({ hasText: rid }).filter({ hasText: '"response_status":200' }).waitFor({ timeout: T.short });
    await shot(a, '09-ws-console');
    await axeCheck(a, 'the WebSocket console');
    results.push(`${w}: ws console round trip`);

    step('page A deletes the car from the row menu; it leaves page B live');
    await openCars(a);
    await press(a, rowA.getByTestId('row-menu-button'));
    await press(a, a.getByTestId('menu-delete')); // confirm() accepted
    await expectText(a.getByTestId('toast'), 'Deleted cars');
    await b.locator(`[data-testid="record-row"][data-id="${carId}"]`).waitFor({ state: 'detached', timeout: T.short });
    await b.locator(`[data-testid="event-item"][data-action="delete"][data-pk="${carId}"]`).waitFor({ timeout: T.short });
    results.push(`${w}: live delete seen in page B`);

    step('the feed panel collapses and comes back');
    await press(b, b.getByTestId('feed-toggle'));
    await b.getByTestId('event-feed').waitFor({ state: 'hidden', timeout: T.short });
    await shot(b, '10-feed-collapsed');
    await press(b, b.getByTestId('feed-toggle'));
    await b.getByTestId('event-feed').waitFor({ state: 'visible', timeout: T.short });
    results.push(`${w}: feed collapses`);

    step('page B logs out');
    await b.getByTestId('logout').click();
    await b.getByTestId('login-form').waitFor({ timeout: T.short });
    results.push(`${w}: logout`);

    if (consoleErrors.length) throw new Error(`uncaught page errors: ${consoleErrors.join('; ')}`);
  } catch (e) {
    for (const [name, p] of Object.entries(pages)) {
      const file = join(SHOT_DIR, `${w}-failure-page-${name}.png`);
      await p.screenshot({ path: file, fullPage: true }).then(() => console.error(`  screenshot: ${file}`), () => {});
    }
    if (consoleErrors.length) console.error(`  page errors: ${consoleErrors.join('; ')}`);
    throw e;
  } finally {
    await ctxA.close().catch(() => {});
    await ctxB.close().catch(() => {});
  }
}

let failed = false;
try {
  for (const w of WIDTHS) await run(w);
} catch (e) {
  failed = true;
  console.error(`FAIL during "${current}": ${e instanceof Error ? e.stack ?? e.message : e}`);
} finally {
  await browser.close().catch(() => {});
}

for (const r of results) console.log(`  ok  ${r}`);
console.log(`  screenshots: ${SHOT_DIR}`);
console.log(failed ? 'browser tests: FAILED' : `browser tests: passed (${results.length} checks)`);
process.exit(failed ? 1 : 0);
