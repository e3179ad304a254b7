// Reads the server's OpenAPI document (GET /api/schema) into what the console needs: the
// collections, their declared fields and their custom actions. When the server has no schema
// endpoint, the console falls back to a list of collection names the user keeps (localStorage)
// and a JSON textarea instead of generated forms.

export interface FieldDef {
  name: string;
  type: 'string' | 'text' | 'integer' | 'number' | 'boolean' | 'datetime' | 'json' | 'ref' | string;
  required: boolean;
  readOnly: boolean;
  writeOnly?: boolean;
  choices?: unknown[];
  min?: number;
  max?: number;
  maxLength?: number;
  description?: string;
}

/** Who may call an operation (the server's `x-livebase-rule`); undefined when not known. */
export type Rule = 'public' | 'authenticated' | 'owner' | 'admin' | 'nobody' | undefined;

export interface ActionDef {
  name: string;
  detail: boolean;
  methods: string[];
  task: boolean;
  rule?: Rule;
}

export interface CollectionDef {
  name: string;
  fields: FieldDef[] | null; // null: unknown (no schema) -> JSON textarea
  actions: ActionDef[];
  /** Rules of the record operations, from the schema (missing: not known, or not offered). */
  rules?: Partial<Record<'list' | 'retrieve' | 'create' | 'update' | 'delete', Rule>>;
}

export interface Schema {
  source: 'openapi' | 'fallback';
  collections: CollectionDef[];
  basePath: string;
}

const SERVER_FIELDS = new Set(['id', 'created', 'updated', 'version', 'owner']);
const RESERVED = new Set(['tasks', 'auth', 'health', 'schema', 'auth_tokens', 'metrics']);
const FALLBACK_KEY = 'livebase.console.collections';

type Json = Record<string, any>;

function resolve(doc: Json, node: any, depth = 0): Json {
  if (!node || typeof node !== 'object' || depth > 8) return node ?? {};
  if (typeof node.$ref === 'string' && node.$ref.startsWith('#/')) {
    let cur: any = doc;
    for (const part of node.$ref.slice(2).split('/')) cur = cur?.[part.replace(/~1/g, '/').replace(/~0/g, '~')];
    return resolve(doc, cur, depth + 1);
  }
  if (Array.isArray(node.allOf)) {
    const merged: Json = { type: 'object', properties: {}, required: [] };
    for (const part of node.allOf) {
      const r = resolve(doc, part, depth + 1);
      Object.assign(merged.properties, r.properties ?? {});
      merged.required.push(...(r.required ?? []));
    }
    return merged;
  }
  return node;
}

function typeOf(prop: Json): string {
  const x = prop['x-livebase-type'] ?? prop['x-type'];
  if (typeof x === 'string') return x;
  let t = prop.type;
  if (Array.isArray(t)) t = t.find((v: string) => v !== 'null') ?? t[0];
  if (t === 'string' && prop.format === 'date-time') return 'datetime';
  if (t === 'string' || t === 'integer' || t === 'number' || t === 'boolean') return t;
  if (Array.isArray(prop.anyOf) || Array.isArray(prop.oneOf)) {
    const alts = (prop.anyOf ?? prop.oneOf) as Json[];
    const first = alts.find((a) => a.type !== 'null');
    if (first) return typeOf(first);
  }
  return 'json';
}

function fieldsFromSchema(doc: Json, schema: Json): FieldDef[] {
  const s = resolve(doc, schema);
  const props: Json = s.properties ?? {};
  const required = new Set<string>(Array.isArray(s.required) ? s.required : []);
  const out: FieldDef[] = [];
  for (const [name, raw] of Object.entries(props)) {
    if (SERVER_FIELDS.has(name)) continue;
    const p = resolve(doc, raw);
    if (p.readOnly === true) continue;
    const choices = Array.isArray(p.enum) ? p.enum.filter((v: unknown) => v !== null) : undefined;
    out.push({
      name,
      type: typeOf(p),
      required: required.has(name),
      readOnly: false,
      writeOnly: p.writeOnly === true,
      choices,
      min: typeof p.minimum === 'number' ? p.minimum : undefined,
      max: typeof p.maximum === 'number' ? p.maximum : undefined,
      maxLength: typeof p.maxLength === 'number' ? p.maxLength : undefined,
      description: typeof p.description === 'string' ? p.description : undefined,
    });
  }
  return out;
}

/** An operation's rule; an operation the server does not offer is "nobody". */
function ruleOf(op: Json | undefined): Rule {
  if (!op) return 'nobody';
  const r = op['x-livebase-rule'];
  return r === 'public' || r === 'authenticated' || r === 'owner' || r === 'admin' || r === 'nobody' ? r : undefined;
}

function bodySchema(op: Json | undefined): Json | undefined {
  const content = op?.requestBody?.content;
  if (!content) return undefined;
  return (content['application/json'] ?? content['application/merge-patch+json'] ?? Object.values(content)[0])?.schema;
}

/** Parses an OpenAPI 3.x document into collections, fields and actions. */
export function parseOpenApi(doc: Json, apiBase = '/api'): Schema {
  const paths: Json = doc.paths ?? {};
  const schemas: Json = doc.components?.schemas ?? {};
  // Paths are absolute (servers: [{url: "/"}]) or relative to servers[0].
  let serverBase = '';
  const serverUrl = doc.servers?.[0]?.url;
  if (typeof serverUrl === 'string') {
    try {
      serverBase = new URL(serverUrl, 'http://x').pathname.replace(/\/+$/, '');
    } catch {
      serverBase = '';
    }
  }
  const base = apiBase.replace(/\/+$/, '');
  const split = (p: string): { name: string; rest: string } | null => {
    const full = serverBase + p;
    if (!full.startsWith(base + '/')) return null;
    const m = /^([A-Za-z_][A-Za-z0-9_]*)(.*)$/.exec(full.slice(base.length + 1));
    return m ? { name: m[1], rest: m[2].replace(/\/+$/, '') } : null;
  };
  // A collection is a name served at {base}/{name} with its record schemas; with livebase's
  // document that is components.schemas["{name}.page"] (endpoints such as /api/double have none).
  const hasComponents = Object.keys(schemas).length > 0;
  const isCollection = (name: string, ops: Json) =>
    !RESERVED.has(name) && (hasComponents ? Boolean(schemas[`${name}.page`] || schemas[`${name}.input`]) : Boolean(ops.get && ops.post));

  const byName = new Map<string, CollectionDef>();
  for (const [p, item] of Object.entries(paths)) {
    const sp = split(p);
    if (!sp || sp.rest !== '') continue;
    const ops = item as Json;
    if (!isCollection(sp.name, ops)) continue;
    const c: CollectionDef = { name: sp.name, fields: null, actions: [], rules: {} };
    c.rules!.list = ruleOf(ops.get);
    c.rules!.create = ruleOf(ops.post);
    const body = bodySchema(ops.post);
    if (body) c.fields = fieldsFromSchema(doc, body);
    else if (schemas[sp.name]) c.fields = fieldsFromSchema(doc, schemas[sp.name]);
    byName.set(sp.name, c);
  }
  for (const [p, item] of Object.entries(paths)) {
    const sp = split(p);
    const c = sp && byName.get(sp.name);
    if (!sp || !c) continue;
    const ops = item as Json;
    if (/^\/\{[^}]+\}$/.exec(sp.rest)) {
      // The detail path: what retrieve, update and delete require (an operation the server does
      // not offer is "nobody").
      c.rules = { ...c.rules, retrieve: ruleOf(ops.get), update: ruleOf(ops.patch ?? ops.put), delete: ruleOf(ops.delete) };
      continue;
    }
    const action = /^(\/\{[^}]+\})?:([A-Za-z_][A-Za-z0-9_]*)$/.exec(sp.rest);
    if (!action) continue;
    const detail = Boolean(action[1]);
    const methods = Object.keys(ops).filter((k) => ['get', 'post', 'put', 'patch', 'delete'].includes(k));
    // A task action names its kind (x-livebase-task) or always runs async.
    const isTask = methods.some((k) => Boolean(ops[k]['x-livebase-task']) || ops[k]['x-livebase-async'] === 'always');
    if (!c.actions.some((a) => a.name === action[2] && a.detail === detail)) {
      const rule = ruleOf(ops[methods.includes('post') ? 'post' : methods[0]]);
      c.actions.push({ name: action[2], detail, methods: methods.map((x) => x.toUpperCase()), task: isTask, rule });
    }
  }
  const collections = [...byName.values()].sort((a, b) => a.name.localeCompare(b.name));
  return { source: 'openapi', collections, basePath: base };
}

export function fallbackNames(): string[] {
  try {
    const v = JSON.parse(localStorage.getItem(FALLBACK_KEY) ?? 'null');
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v;
  } catch {
    /* ignore */
  }
  return ['cars'];
}

export function saveFallbackNames(names: string[]): void {
  localStorage.setItem(FALLBACK_KEY, JSON.stringify(names));
}

export function fallbackSchema(): Schema {
  return {
    source: 'fallback',
    basePath: '/api',
    collections: fallbackNames().map((name) => ({ name, fields: null, actions: [] })),
  };
}

export async function loadSchema(origin: string, apiBase = '/api'): Promise<Schema> {
  try {
    const res = await fetch(origin + apiBase + '/schema', { headers: { Accept: 'application/json' }, credentials: 'same-origin' });
    if (!res.ok) return fallbackSchema();
    const doc = await res.json();
    if (!doc || typeof doc !== 'object' || !doc.paths) return fallbackSchema();
    const s = parseOpenApi(doc, apiBase);
    return s.collections.length ? s : fallbackSchema();
  } catch {
    return fallbackSchema();
  }
}
