// Hash routes: #/c/<collection>?filter=..&ordering=..&limit=..&offset=.., #/tasks, #/ws.
export interface Route {
  name: 'collection' | 'tasks' | 'ws' | 'home';
  arg?: string;
  params: URLSearchParams;
}

export function parseRoute(hash = location.hash): Route {
  const raw = hash.replace(/^#/, '') || '/';
  const [path, query = ''] = raw.split('?', 2);
  const params = new URLSearchParams(query);
  const parts = path.split('/').filter(Boolean);
  if (parts[0] === 'c' && parts[1]) return { name: 'collection', arg: decodeURIComponent(parts[1]), params };
  if (parts[0] === 'tasks') return { name: 'tasks', params };
  if (parts[0] === 'ws') return { name: 'ws', params };
  return { name: 'home', params };
}

export function navigate(hash: string): void {
  if (location.hash === hash) window.dispatchEvent(new HashChangeEvent('hashchange'));
  else location.hash = hash;
}
