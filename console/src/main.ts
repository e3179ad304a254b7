// livebase console: layout, login, sidebar and routing.
import './style.css';
import { h, clear } from './dom';
import { state, makeClient, savedToken, saveToken, mountErrorBanner, mountToasts, showError, hideError, attempt, type User } from './app';
import { loadSchema, fallbackNames, saveFallbackNames, type Schema } from './schema';
import { parseRoute, navigate } from './router';
import { recordsView } from './views/records';
import { tasksView } from './views/tasks';
import { wsConsoleView } from './views/wsconsole';
import { mountFeed } from './views/feed';

const root = document.getElementById('app')!;

const userBox = h('div', { class: 'user-box', 'data-testid': 'user-box' });
const connBadge = h('span', { class: 'badge', 'data-testid': 'ws-status', title: 'WebSocket' }, 'offline');
const errorBanner = h('div', { class: 'error-banner', 'data-testid': 'error', hidden: true, role: 'alert' });
const nav = h('nav', { class: 'sidebar', 'data-testid': 'sidebar', 'aria-label': 'Collections and system pages' });
const main = h('main', { class: 'content' });
const feedPanel = h('aside', { class: 'feed-panel', 'aria-label': 'Live events' });
const layout = h('div', { class: 'layout' }, nav, main, feedPanel);
const toasts = h('div', { class: 'toasts', role: 'status', 'aria-live': 'polite', 'data-testid': 'toasts' });

mountErrorBanner(errorBanner);
mountToasts(toasts);

append();
function append(): void {
  root.append(
    h('header', { class: 'topbar' },
      h('a', { href: '#/', class: 'brand' }, 'livebase', h('span', { class: 'muted' }, ' console')),
      connBadge,
      h('span', { class: 'grow' }),
      userBox),
    errorBanner,
    layout,
    toasts,
  );
}

// ---- user ---------------------------------------------------------------------------------

function renderUser(): void {
  const u = state.user;
  if (u) {
    clear(
      userBox,
      h('span', null, 'Signed in as ', h('strong', { 'data-testid': 'current-user' }, u.username), u.admin ? h('span', { class: 'badge ok' }, 'admin') : null),
      h('button', { 'data-testid': 'logout', onclick: () => void logout() }, 'Log out'),
    );
    return;
  }
  const username = h('input', { type: 'text', id: 'login-username', name: 'username', autocomplete: 'username', placeholder: 'username', 'data-testid': 'login-username', required: true });
  const password = h('input', { type: 'password', id: 'login-password', name: 'password', autocomplete: 'current-password', placeholder: 'password', 'data-testid': 'login-password', required: true });
  const form = h(
    'form',
    { class: 'login-form', 'data-testid': 'login-form', 'aria-label': 'Log in' },
    h('span', { class: 'muted anon', 'data-testid': 'anonymous' }, 'Not signed in'),
    h('label', { for: 'login-username', class: 'sr-only' }, 'Username'),
    username,
    h('label', { for: 'login-password', class: 'sr-only' }, 'Password'),
    password,
    h('button', { type: 'submit', class: 'primary', 'data-testid': 'login-submit' }, 'Log in'),
    h('button', { type: 'button', 'data-testid': 'register-submit', title: 'Sign up (where the server allows it), then log in', onclick: () => void register() }, 'Sign up'),
  );
  async function register(): Promise<void> {
    if (!form.reportValidity()) return;
    const ok = await attempt(async () => {
      await state.lb.auth.register(username.value, password.value);
      return true;
    });
    if (ok) await login(username.value, password.value);
  }
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    void login(username.value, password.value);
  });
  clear(userBox, form);
}

async function login(username: string, password: string): Promise<void> {
  const res = await attempt(() => state.lb.auth.login(username, password));
  if (!res) return;
  hideError();
  saveToken(res.token ?? state.lb.token);
  setUser(res.user as User);
}

async function logout(): Promise<void> {
  try {
    await state.lb.auth.logout();
  } catch (e) {
    // Already signed out on the server (expired token): still forget it here.
    console.warn(e);
  }
  saveToken(null);
  setUser(null);
}

function setUser(u: User | null): void {
  state.user = u;
  renderUser();
  state.userChanged.emit(u);
  // Subscriptions and lists depend on who is asking: remount the view.
  route();
}

// ---- sidebar ------------------------------------------------------------------------------

function renderNav(): void {
  const r = parseRoute();
  const schema: Schema = state.schema;
  const link = (href: string, label: string, testid: string, active: boolean) =>
    h('a', { href, 'data-testid': testid, class: active ? 'active' : '' }, label);
  const addInput = h('input', { type: 'text', placeholder: 'collection name', 'aria-label': 'Add a collection by name', 'data-testid': 'nav-add-input' });
  clear(
    nav,
    h('h4', null, 'Collections', h('span', { class: 'muted small-text', 'data-testid': 'schema-source' }, schema.source === 'openapi' ? ' (schema)' : ' (no schema)')),
    h(
      'ul',
      null,
      // The built-in users collection is admin-only: list it for admins. Schedules (admin-only
      // too) are under System.
      schema.collections.filter((c) => c.name !== 'schedules' && (c.name !== 'users' || state.user?.admin)).map((c) =>
        h('li', null, link(`#/c/${encodeURIComponent(c.name)}`, c.name, `nav-collection-${c.name}`, r.name === 'collection' && r.arg === c.name)),
      ),
    ),
    schema.source === 'fallback'
      ? h('form', { class: 'add-coll', onsubmit: (e: Event) => {
          e.preventDefault();
          const name = addInput.value.trim();
          if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) return;
          const names = fallbackNames();
          if (!names.includes(name)) names.push(name);
          saveFallbackNames(names);
          state.schema.collections.push({ name, fields: null, actions: [] });
          navigate(`#/c/${name}`);
        } }, addInput)
      : null,
    h('h4', null, 'System'),
    h('ul', null,
      h('li', null, link('#/tasks', 'Tasks', 'nav-tasks', r.name === 'tasks')),
      state.user?.admin && schema.collections.some((c) => c.name === 'schedules')
        ? h('li', null, link('#/c/schedules', 'Schedules', 'nav-schedules', r.name === 'collection' && r.arg === 'schedules'))
        : null,
      h('li', null, link('#/ws', 'WebSocket console', 'nav-ws', r.name === 'ws'))),
  );
}

// ---- routing ------------------------------------------------------------------------------

let current: { dispose: () => void } | null = null;

function route(): void {
  if (current) current.dispose();
  current = null;
  hideError();
  renderNav();
  const r = parseRoute();
  if (r.name === 'collection') {
    const coll = state.schema.collections.find((c) => c.name === r.arg) ?? { name: r.arg!, fields: null, actions: [] };
    const v = recordsView(coll, r.params);
    clear(main, v.el);
    current = v;
  } else if (r.name === 'tasks') {
    const v = tasksView(r.params);
    clear(main, v.el);
    current = v;
  } else if (r.name === 'ws') {
    const v = wsConsoleView();
    clear(main, v.el);
    current = v;
  } else {
    clear(
      main,
      h('section', { class: 'view', 'data-testid': 'home-view' },
        h('h2', null, 'Welcome'),
        h('p', null, 'Browse a collection on the left, follow tasks, or talk to the server over the WebSocket console. Changes made anywhere appear here live.'),
        h('ul', null, state.schema.collections.filter((c) => (c.name !== 'users' && c.name !== 'schedules') || state.user?.admin)
          .map((c) => h('li', null, h('a', { href: `#/c/${c.name}` }, c.name))))),
    );
  }
}

// ---- start --------------------------------------------------------------------------------

async function start(): Promise<void> {
  const token = savedToken();
  state.lb = makeClient(token);
  try {
    state.user = (await state.lb.auth.me()) as User;
  } catch {
    state.user = null;
    if (token) {
      // A stale token is a 401 even on public routes: forget it and go on anonymously
      // (or with the session cookie, if there is a valid one).
      saveToken(null);
      state.lb = makeClient(undefined);
      state.user = await state.lb.auth.me().then((u) => u as User, () => null);
    }
  }
  state.lb.realtime.on('status', (e: { status: string; code?: number }) => {
    connBadge.textContent = e.status;
    connBadge.className = `badge ${e.status === 'open' ? 'ok' : e.status === 'connecting' ? '' : 'bad'}`;
    connBadge.title = e.code ? `last close code ${e.code}` : 'WebSocket';
  });
  state.lb.realtime.on('error', (e: Error) => console.warn('realtime:', e));
  state.schema = await loadSchema(location.origin);
  renderUser();
  mountFeed(feedPanel, layout);
  window.addEventListener('hashchange', route);
  void Promise.resolve(state.lb.realtime.connect()).catch((e) => console.warn('realtime connect:', e));
  route();
}

start().catch(showError);
